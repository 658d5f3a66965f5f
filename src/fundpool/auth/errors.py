"""What goes wrong in authentication and in managing keys and users, each with its stable code.

Authentication fails with a subclass of `AuthenticationFailed` (the API answers 401); a detail
never tells an unknown key or user from a wrong secret or password. The bounds the titles state
are checked by the store's validation.
"""

from __future__ import annotations

from fundpool.core.errors import FundpoolError

PASSWORD_CHARS_MIN = 12
PASSWORD_CHARS_MAX = 1024  # argon2 prehashes any length; the bound keeps a login's work bounded
KEY_NAME_CHARS_MAX = 64


class AuthenticationFailed(FundpoolError):
    """Base of every failure to establish who is calling (the API answers 401)."""

    code = "authentication_failed"
    title = "authentication failed"


class Unauthenticated(AuthenticationFailed):
    code = "unauthenticated"
    title = "no credentials, or credentials that are not a token or a login"


class InvalidCredentials(AuthenticationFailed):
    code = "invalid_credentials"
    title = "the key, token, username or password is not valid"


class KeyExpired(AuthenticationFailed):
    code = "key_expired"
    title = "the API key has expired"


class KeyRevoked(AuthenticationFailed):
    code = "key_revoked"
    title = "the API key has been revoked"


class SessionExpired(AuthenticationFailed):
    code = "session_expired"
    title = "the session has expired; log in again"


class UserDisabled(AuthenticationFailed):
    code = "user_disabled"
    title = "the user is disabled"


class UnknownKey(FundpoolError):
    code = "unknown_key"
    title = "no such API key"


class KeyAlreadyRotated(FundpoolError):
    code = "key_already_rotated"
    title = "the API key has already been rotated; rotate its replacement"


class UnknownUser(FundpoolError):
    code = "unknown_user"
    title = "no such user"


class UserExists(FundpoolError):
    code = "user_exists"
    title = "a user with this username already exists"


class InvalidRoles(FundpoolError):
    code = "invalid_roles"
    title = "give one or more known roles, and only known scopes"


class InvalidKeyExpiry(FundpoolError):
    code = "invalid_expiry"
    title = "an expiry must lie in the future, and a grace period within its bounds"


class InvalidKeyName(FundpoolError):
    code = "invalid_key_name"
    title = f"a key's name is 1 to {KEY_NAME_CHARS_MAX} printable characters"


class InvalidUsername(FundpoolError):
    code = "invalid_username"
    title = "a username is 1 to 64 characters of letters, digits and _ . @ -"


class WeakPassword(FundpoolError):
    code = "weak_password"
    title = f"a password has {PASSWORD_CHARS_MIN} to {PASSWORD_CHARS_MAX} characters"


class SelfGrant(FundpoolError):
    """Separation of duties: nobody changes their own roles, whatever their role."""

    code = "self_grant"
    title = "nobody changes their own roles"
