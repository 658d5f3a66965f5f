// fundpool: approvals signed in the browser (docs/approvals.md, docs/console.md).
//
// An approver's Ed25519 key pair is made here with WebCrypto and kept in this browser's
// IndexedDB, one per signed-in username (a CryptoKey is structured-cloneable: IndexedDB keeps
// the key object itself). Only the raw public key (base64, to register it) and signatures
// (base64, of the 32-byte digest the API gives as hex) leave this file; the private key leaves
// it only as the PKCS#8 PEM file its owner asks for ("Export my key", the file
// `fundpool approve --key FILE` reads), and comes in only from such a file.
//
// Every function returns a promise that resolves to plain JSON and never rejects: a failure is
// `{error: "<code>", detail: "…"}` (the console calls these with ui.run_javascript, which
// waits for an answer).
(() => {
  "use strict";

  const DB_NAME = "fundpool-signing";
  const DB_VERSION = 1;
  const STORE = "keys"; // {username, keyId, name, publicKey, privateKey, createdAt}
  const ALGORITHM = { name: "Ed25519" };
  const PEM_LABEL = "PRIVATE KEY";
  const DIGEST_HEX = /^[0-9a-fA-F]{64}$/;

  // --- bytes ---------------------------------------------------------------------------------

  function toBase64(buffer) {
    const bytes = new Uint8Array(buffer);
    let text = "";
    for (let i = 0; i < bytes.length; i += 1) text += String.fromCharCode(bytes[i]);
    return btoa(text);
  }

  function fromBase64(text) {
    const clean = text.replace(/-/g, "+").replace(/_/g, "/").replace(/\s+/g, "");
    const padded = clean + "=".repeat((4 - (clean.length % 4)) % 4);
    const raw = atob(padded);
    const bytes = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i += 1) bytes[i] = raw.charCodeAt(i);
    return bytes;
  }

  function fromHex(hex) {
    const bytes = new Uint8Array(hex.length / 2);
    for (let i = 0; i < bytes.length; i += 1) bytes[i] = parseInt(hex.substr(i * 2, 2), 16);
    return bytes;
  }

  function toHex(buffer) {
    return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
  }

  // The key's id as the server computes it: the first 16 hex digits of SHA-256 of the raw
  // public key (approvals/signing.py `key_id_of`).
  async function keyIdOf(raw) {
    return toHex(await crypto.subtle.digest("SHA-256", raw)).slice(0, 16);
  }

  function pemOf(der) {
    const body = toBase64(der).match(/.{1,64}/g).join("\n");
    return `-----BEGIN ${PEM_LABEL}-----\n${body}\n-----END ${PEM_LABEL}-----\n`;
  }

  function derOf(pem) {
    const text = String(pem || "").trim();
    const found = text.match(/-----BEGIN ([A-Z ]+)-----([\s\S]*?)-----END \1-----/);
    if (!found) return { error: "not_pem" };
    if (found[1] !== PEM_LABEL) return { error: "not_pkcs8", detail: found[1] };
    try {
      return { der: fromBase64(found[2]) };
    } catch (error) {
      return { error: "not_pem", detail: String(error) };
    }
  }

  // --- the store -----------------------------------------------------------------------------

  function openDb() {
    return new Promise((resolve, reject) => {
      const request = indexedDB.open(DB_NAME, DB_VERSION);
      request.onupgradeneeded = () => {
        request.result.createObjectStore(STORE, { keyPath: "username" });
      };
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  }

  async function withStore(mode, work) {
    const db = await openDb();
    try {
      return await new Promise((resolve, reject) => {
        const tx = db.transaction(STORE, mode);
        const request = work(tx.objectStore(STORE));
        let result;
        request.onsuccess = () => { result = request.result; };
        tx.oncomplete = () => resolve(result);
        tx.onerror = () => reject(tx.error);
        tx.onabort = () => reject(tx.error);
      });
    } finally {
      db.close();
    }
  }

  const load = (username) => withStore("readonly", (store) => store.get(username));
  const save = (record) => withStore("readwrite", (store) => store.put(record));
  const remove = (username) => withStore("readwrite", (store) => store.delete(username));

  function described(record) {
    if (!record) return null;
    return { keyId: record.keyId, name: record.name, publicKey: record.publicKey,
             createdAt: record.createdAt };
  }

  async function keep(username, name, privateKey, publicKey) {
    const raw = await crypto.subtle.exportKey("raw", publicKey);
    const record = { username, name: String(name || "browser"), keyId: await keyIdOf(raw),
                     publicKey: toBase64(raw), privateKey, createdAt: new Date().toISOString() };
    await save(record);
    return described(record);
  }

  function failed(code, error) {
    return { error: code, detail: error === undefined ? "" : String(error && error.message
      ? `${error.name}: ${error.message}` : error) };
  }

  // --- what the console calls ----------------------------------------------------------------

  let supportedAnswer = null;

  async function supported() {
    if (supportedAnswer === null) {
      try {
        await crypto.subtle.generateKey(ALGORITHM, false, ["sign", "verify"]);
        supportedAnswer = typeof indexedDB !== "undefined";
      } catch (error) {
        supportedAnswer = false;
      }
    }
    return supportedAnswer;
  }

  async function info(username) {
    try {
      if (!(await supported())) return { error: "unsupported" };
      return { key: described(await load(username)) };
    } catch (error) {
      return failed("storage", error);
    }
  }

  async function create(username, name) {
    try {
      if (!(await supported())) return { error: "unsupported" };
      // Extractable, so that its owner can export it (the same file the CLI reads).
      const pair = await crypto.subtle.generateKey(ALGORITHM, true, ["sign", "verify"]);
      return { key: await keep(username, name, pair.privateKey, pair.publicKey) };
    } catch (error) {
      return failed("storage", error);
    }
  }

  async function sign(username, digestHex) {
    try {
      if (!DIGEST_HEX.test(String(digestHex || ""))) return { error: "bad_digest" };
      const record = await load(username);
      if (!record) return { error: "no_key" };
      const signature = await crypto.subtle.sign(ALGORITHM, record.privateKey,
                                                 fromHex(digestHex));
      return { keyId: record.keyId, signature: toBase64(signature) };
    } catch (error) {
      return failed("sign_failed", error);
    }
  }

  async function exportPem(username) {
    try {
      const record = await load(username);
      if (!record) return { error: "no_key" };
      const der = await crypto.subtle.exportKey("pkcs8", record.privateKey);
      const filename = `fundpool-${username}-${record.keyId}.pem`;
      const url = URL.createObjectURL(new Blob([pemOf(der)], { type: "application/x-pem-file" }));
      const anchor = document.createElement("a");
      anchor.href = url;
      anchor.download = filename;
      document.body.appendChild(anchor);
      anchor.click();
      document.body.removeChild(anchor);
      setTimeout(() => URL.revokeObjectURL(url), 60000);
      return { filename };
    } catch (error) {
      return failed("export_failed", error);
    }
  }

  async function importPem(username, pem, name) {
    try {
      if (!(await supported())) return { error: "unsupported" };
      const read = derOf(pem);
      if (read.error) return read;
      let privateKey;
      try {
        privateKey = await crypto.subtle.importKey("pkcs8", read.der, ALGORITHM, true, ["sign"]);
      } catch (error) {
        return failed("not_ed25519", error);
      }
      // WebCrypto does not derive a public key; the private key's JWK carries it (`x`).
      const jwk = await crypto.subtle.exportKey("jwk", privateKey);
      const publicKey = await crypto.subtle.importKey("raw", fromBase64(jwk.x), ALGORITHM, true,
                                                      ["verify"]);
      return { key: await keep(username, name, privateKey, publicKey) };
    } catch (error) {
      return failed("storage", error);
    }
  }

  async function importFile(username, file, name) {
    if (!file) return { error: "no_file" };
    if (file.size > 16384) return { error: "not_pem" };
    try {
      return await importPem(username, await file.text(), name || file.name.replace(/\.[^.]*$/, ""));
    } catch (error) {
      return failed("not_pem", error);
    }
  }

  async function forget(username) {
    try {
      await remove(username);
      return { ok: true };
    } catch (error) {
      return failed("storage", error);
    }
  }

  window.fundpoolSigning = Object.freeze({
    supported, info, create, sign, exportPem, importPem, importFile, forget,
  });
})();
