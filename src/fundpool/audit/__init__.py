"""The audit log as a transparency log (issue 17): every action that records its actor, read
from the durable tables where it was recorded, appended as a leaf of an RFC 6962/9162 Merkle
tree, with signed checkpoints, inclusion and consistency proofs, verification and exports
(docs/audit.md)."""
