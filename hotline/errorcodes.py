"""Every error code hotline raises, with what it means and the error class it is raised as.

A code is part of the wire contract: clients, auditors, scripts and tests match on it, so a code
never changes meaning. Raise sites name a member (``code=Code.AUTH_SENDER_MISMATCH``), never a
string, so ``mypy --strict`` refuses a code that is not here; ``HotlineError`` refuses a code
raised as another class than the one named here (only an ``AuthError``, the verdict that closes
a session whatever rule refused it, may carry a code of another class). A code a peer sends us
(an ``error`` frame, an HTTP error body) is not ours: it is a ``hotline.errors.PeerCode``.

The README's error table is generated from this module (``markdown_table``).
"""

from __future__ import annotations

from enum import StrEnum


class Code(StrEnum):
    """A code ``family.reason``; ``raised_as`` names the ``HotlineError`` class (or an ancestor of
    it) that every error with this code is an instance of, ``meaning`` says what happened."""

    raised_as: str
    meaning: str

    def __new__(cls, value: str, raised_as: str, meaning: str) -> Code:
        member = str.__new__(cls, value)
        member._value_ = value
        member.raised_as = raised_as
        member.meaning = meaning
        return member

    # -- connecting and authenticating ---------------------------------------------------------
    AUTH_FAILED = "auth.failed", "AuthError", "authentication failed"
    AUTH_BAD_NONCE = ("auth.bad_nonce", "AuthError",
                      "the auth answers another connection's challenge (replayed or stale)")
    AUTH_BAD_SIGNATURE = ("auth.bad_signature", "CryptoError",
                          "a signature does not verify with the key it names")
    AUTH_WRONG_KEY = ("auth.wrong_key", "CryptoError",
                      "a signature names another key than the one expected")
    AUTH_CLOCK_SKEW = ("auth.clock_skew", "AuthError",
                       "this machine's clock is too far from the server's: set it (NTP)")
    AUTH_WRONG_ORIGIN = ("auth.wrong_origin", "AuthError",
                         "the server is not the one the profile names (another origin)")
    AUTH_UNKNOWN_KEY = "auth.unknown_key", "AuthError", "the key is not enrolled by any party"
    AUTH_REVOKED = "auth.revoked", "AuthError", "the key's enrollment was revoked"
    AUTH_EXPIRED = "auth.expired", "AuthError", "the key's enrollment has expired"
    AUTH_NOT_YET_VALID = ("auth.not_yet_valid", "AuthError",
                          "the key's enrollment is not valid yet")
    AUTH_TIMEOUT = ("auth.timeout", "AuthError",
                    "no auth frame came within the handshake timeout")
    AUTH_MISSING = ("auth.missing", "AuthError",
                    'an HTTP request lacks its "Authorization: Hotline" header')
    AUTH_MALFORMED = "auth.malformed", "AuthError", "an HTTP Authorization header is malformed"
    AUTH_SENDER_MISMATCH = ("auth.sender_mismatch", "ProtocolViolation",
                            "an envelope names another sender than the session's member")
    CONNECT_FAILED = ("connect.failed", "HotlineError",
                      "the server could not be reached, or the connection was lost")
    SERVER_REFUSED = ("server.refused", "HostRefused",
                      "the server refused an HTTP request with a typed error (its code shown)")
    SERVER_CANNOT_LISTEN = ("server.cannot_listen", "ListenError",
                            "the server cannot listen on its address")
    SERVER_PORT_IN_USE = ("server.port_in_use", "ListenError",
                          "another program already listens on the server's port")

    # -- frames and envelopes on the wire --------------------------------------------------------
    FRAME_MALFORMED = "frame.malformed", "WireError", "a frame or JSON document is malformed"
    FRAME_UNKNOWN_TYPE = "frame.unknown_type", "WireError", "a frame of an unknown type"
    FRAME_OUT_OF_ORDER = ("frame.out_of_order", "WireError",
                          "a frame came when the session does not expect it (also a second "
                          "resume of a channel whose replay is running)")
    FRAME_TOO_LARGE = "frame.too_large", "WireError", "a frame or envelope exceeds the size limit"
    FRAME_DUPLICATE_KEY = ("frame.duplicate_key", "WireError",
                           "a JSON object names the same key twice")
    FRAME_FLOAT = "frame.float", "WireError", "a JSON number with a fraction (none are allowed)"
    FRAME_INT_RANGE = "frame.int_range", "WireError", "an integer outside ±(2^53-1)"
    FRAME_BAD_TIME = "frame.bad_time", "WireError", "a timestamp that is not UTC RFC 3339"
    ENTRY_MALFORMED = ("entry.malformed", "EntryError",
                       "a log entry is not of its kind's shape (a field missing, extra or mistyped)")
    ENTRY_UNKNOWN_KIND = "entry.unknown_kind", "EntryError", "a log entry is of no known kind"
    ENVELOPE_INVALID = ("envelope.invalid", "WireError",
                        "an envelope is malformed (a field missing, unknown or of a wrong form)")
    ENVELOPE_CLOCK_SKEW = ("envelope.clock_skew", "ProtocolViolation",
                           "an envelope is dated in the future beyond the allowed clock skew")
    ENVELOPE_ID_CONFLICT = ("envelope.id_conflict", "ProtocolViolation",
                            "another envelope with this id is already logged: a new one needs a "
                            "new id")
    MESSAGE_UNKNOWN_REF = ("message.unknown_ref", "ProtocolViolation",
                           "a reply names no message on its channel")
    ACK_UNKNOWN_REF = ("ack.unknown_ref", "ProtocolViolation",
                       "an acknowledgement names no message on its channel")
    ECHO_UNKNOWN_REF = ("echo.unknown_ref", "ProtocolViolation",
                        "an echo names no heartbeat on its channel")
    VIOLATION_INVALID = ("violation.invalid", "ProtocolViolation",
                         "a violation report names no sealed field of that message its reporter "
                         "was sent")
    ACK_OWN_PARTY = ("ack.own_party", "ProtocolViolation",
                     "a party acknowledged its own message")
    SUBMIT_RATE_LIMITED = ("submit.rate_limited", "ProtocolViolation",
                           "a member submits faster than the server allows: slow down and resend")
    HTTP_BAD_PARAMETER = ("http.bad_parameter", "ProtocolViolation",
                          "a log-API request has a missing or malformed parameter")
    HTTP_FORBIDDEN = ("http.forbidden", "ProtocolViolation",
                      "the log API does not serve this request to this caller")

    # -- roster, channels, agreements, templates and norms ----------------------------------------
    ROSTER_INVALID = "roster.invalid", "ProtocolViolation", "a roster document is malformed"
    ROSTER_BAD_SIGNATURE = ("roster.bad_signature", "ProtocolViolation",
                            "a roster document's signature does not verify")
    ROSTER_CONFLICT = ("roster.conflict", "ProtocolViolation",
                       "a roster document contradicts one already accepted")
    ROSTER_UNKNOWN_PARTY = ("roster.unknown_party", "ProtocolViolation",
                            "a roster document names a party the roster does not know")
    ROSTER_UNSIGNED = ("roster.unsigned", "ProtocolViolation",
                       "an agreement lacks the signature of a party it binds, or a handover "
                       "that of its old or new authority key")
    ROSTER_EXPIRED = ("roster.expired", "ProtocolViolation",
                      "an enrollment submitted after it expired: the authority enrolls the key "
                      "again")
    ROSTER_SIGNER_NOT_VALID = ("roster.signer_not_valid", "ProtocolViolation",
                               "a member's document (an epoch key) is signed by a key not enrolled, "
                               "or not valid at the time it is for (revoked, expired, not yet valid)")
    ROSTER_EPOCH_OUT_OF_RANGE = ("roster.epoch_out_of_range", "ProtocolViolation",
                                 "an epoch key for an epoch already over, or more than two epochs "
                                 "ahead: publish it nearer its epoch")
    ROSTER_EPOCH_LENGTH = ("roster.epoch_length", "ProtocolViolation",
                           "an epoch key whose epochs are of a length no agreement of its party "
                           "sets (24 h, or an agreement's epoch_hours)")
    ROSTER_RETIRED_AUTHORITY = ("roster.retired_authority", "ProtocolViolation",
                                "a document is signed by an authority key its party handed "
                                "over from: the current authority must sign it")
    CHANNEL_UNKNOWN = "channel.unknown", "ProtocolViolation", "no agreement sets up this channel"
    CHANNEL_NOT_MEMBER = ("channel.not_member", "ProtocolViolation",
                          "the member's party is not on this channel, or it is not open")
    CHANNEL_CLOSED = ("channel.closed", "ProtocolViolation",
                      "the channel's agreement ended it: nothing more is sent on it; its history "
                      "stays readable")
    TEMPLATE_INVALID = ("template.invalid", "ProtocolViolation",
                        "a template, or a body against its template, is invalid")
    TEMPLATE_UNKNOWN = ("template.unknown", "ProtocolViolation",
                        "the channel's agreement does not name this template")
    TEMPLATE_MISMATCH = ("template.mismatch", "ProtocolViolation",
                         "the template's digest is not the one the agreement fixes")
    TEMPLATE_TOO_COSTLY = ("template.too_costly", "ProtocolViolation",
                           "checking a body against its template would cost too much")
    NORM_SENDER_NOT_ALLOWED = ("norm.sender_not_allowed", "ProtocolViolation",
                               "the agreement does not let this member send this")
    NORM_PRECEDENCE_NOT_ALLOWED = ("norm.precedence_not_allowed", "ProtocolViolation",
                                   "the template does not allow this precedence")
    NORM_PRECEDENCE_TOO_LOW = ("norm.precedence_too_low", "ProtocolViolation",
                               "the body calls for a higher precedence than the message has")
    NORM_AUDIENCE = ("norm.audience", "ProtocolViolation",
                     "the message is addressed to a party that is not on the channel")
    NORM_RATE_LIMITED = ("norm.rate_limited", "ProtocolViolation",
                         "the agreement's rate limit for this template is reached: wait")
    NORM_CATALOGUE = ("norm.catalogue", "ProtocolViolation",
                      "the body names no message of the agreement's catalogue, or the wrong "
                      "code word")
    NORM_LATE_NOTICE = ("norm.late_notice", "ProtocolViolation",
                        "a time in the body is sooner after logging than the agreement allows")
    NORM_ORDER = ("norm.order", "ProtocolViolation",
                  "the body's times are out of order, or span more than the agreement allows")
    NORM_REPLY_TO = ("norm.reply_to", "ProtocolViolation",
                     "the message does not answer what the agreement says it must answer")
    NORM_SEQUENCE = ("norm.sequence", "ProtocolViolation",
                     "the body's items are not numbered 1, 2, 3, ... without gaps")
    AGENT_ALREADY_RUNNING = ("agent.already_running", "ProtocolViolation",
                             "an agent already runs for this profile")

    # -- the transparency log, proofs and witnesses ----------------------------------------------
    LOG_INVALID = "log.invalid", "LogError", "transparency-log data is inconsistent"
    LOG_BAD_HEAD = ("log.bad_head", "LogError",
                    "a saved log head file is unreadable or holds no checkpoint size and root")
    LOG_BAD_RANGE = ("log.bad_range", "LogError",
                     "an index or tree size no proof can exist for")
    LOG_BAD_PROOF = "log.bad_proof", "LogError", "a proof does not lead to the signed root"
    LOG_INCONSISTENT = ("log.inconsistent", "LogError",
                        "the log's history was rewritten: a newer head does not extend an older")
    LOG_BAD_NODE = ("log.bad_node", "LogError",
                    "a stored tree node is missing or damaged")
    LOG_BAD_NOTE = "log.bad_note", "LogError", "a signed note is malformed"
    LOG_BAD_KEY = "log.bad_key", "LogError", "a log or witness key is malformed"
    LOG_UNKNOWN_KEY = ("log.unknown_key", "LogError",
                       "no signature on the note is from a trusted key")
    LOG_BAD_SIGNATURE = ("log.bad_signature", "LogError",
                         "a signature from a trusted key does not verify")
    LOG_BAD_CHECKPOINT = "log.bad_checkpoint", "LogError", "a checkpoint is malformed"
    LOG_WRONG_ORIGIN = ("log.wrong_origin", "LogError",
                        "a checkpoint names another log than its key")
    LOG_BAD_COSIGNATURE = "log.bad_cosignature", "LogError", "a witness cosignature is invalid"
    LOG_BAD_BUNDLE = "log.bad_bundle", "LogError", "a proof bundle (a receipt) is malformed"
    LOG_NO_KEY = ("log.no_key", "LogError",
                  "the profile pins no log key: nothing can be verified")
    LOG_UNPROVEN = ("log.unproven", "Unproven",
                    "the server did not prove an entry against the verified head")
    LOG_BAD_ANSWER = ("log.bad_answer", "BadAnswer",
                      "the log host answered with something the log API never sends")
    LOG_BAD_PAGE = ("log.bad_page", "BadAnswer",
                    "the log host sent a page of entries that is malformed or out of range")
    LOG_NO_CHECKPOINT = ("log.no_checkpoint", "ProtocolViolation",
                         "the log has no checkpoint of that size")
    LOG_NO_ENTRY = "log.no_entry", "ProtocolViolation", "the log has no entry at that index"
    LOG_UNKNOWN_WITNESS = ("log.unknown_witness", "ProtocolViolation",
                           "the cosigner is not a witness any agreement names")
    WITNESS_ALARM = ("witness.alarm", "WitnessAlarm",
                     "a witness saw the log contradict itself: alert the parties")
    VERIFY_FAILED = ("verify.failed", "EntryRefused",
                     "a delivered or logged entry does not verify for its receiver or auditor")
    RECORD_MALFORMED = "record.malformed", "RecordError", "a log entry record is malformed"

    # -- keys ----------------------------------------------------------------------------------
    CRYPTO_INVALID = "crypto.invalid", "CryptoError", "a key or signature is malformed"
    CRYPTO_UNSUPPORTED_ALG = ("crypto.unsupported_alg", "CryptoError",
                              "a key or signature of an unsupported algorithm")
    CRYPTO_BAD_KEY_FILE = "crypto.bad_key_file", "CryptoError", "a private key file is unreadable"

    # -- sealed fields and epoch keys --------------------------------------------------------------
    SEAL_INVALID = ("seal.invalid", "SealError",
                    "sealed fields, a disclosure or an epoch key are malformed")
    SEAL_BAD_EPOCH_KEY = ("seal.bad_epoch_key", "SealError",
                          "an epoch key is not the member's own for that epoch, signed by its "
                          "enrolled key: nothing is sealed to it")
    SEAL_UNLOGGED_KEY = ("seal.unlogged_key", "SealError",
                         "an epoch key is not proven in the log against the pinned log key: "
                         "nothing is sealed to it")
    SEAL_NO_READER = ("seal.no_reader", "SealError",
                      "a sealed field has nobody in its audience with an epoch key: it would be "
                      "lost")
    SEAL_NO_KEY = ("seal.no_key", "SealError",
                   "the epoch key a box is sealed to is no longer held (retired): read it from "
                   "the local store")
    SEAL_CANNOT_OPEN = ("seal.cannot_open", "SealError",
                        "a sealed box does not open (tampered, moved from another envelope, or "
                        "sealed to another key)")
    SEAL_DIGEST_MISMATCH = ("seal.digest_mismatch", "SealError",
                            "a disclosure is not the one its signed digest commits to (forged or "
                            "altered)")

    # -- attachments -------------------------------------------------------------------------------
    ATTACHMENT_INVALID = ("attachment.invalid", "WireError",
                          "an attachment reference is malformed (its digest, size, media type, "
                          "or a file name that is not safe to save under)")
    ATTACHMENT_CANNOT_OPEN = ("attachment.cannot_open", "SealError",
                              "a chunk of a sealed attachment does not open (altered, moved, "
                              "repeated, sealed with another key) or the attachment was cut short")
    ATTACHMENT_REFUSED = ("attachment.refused", "ProtocolViolation",
                          "an upload this member may not make: not a liaison, larger than the "
                          "server accepts, or past its party's share of uploads under way")
    ATTACHMENT_MISSING = ("attachment.missing", "ProtocolViolation",
                          "an attachment named is not held: its sender's party has not uploaded "
                          "it in full (a message is accepted only with all of them), or the entry "
                          "a download names has no such attachment")
    ATTACHMENT_DIGEST_MISMATCH = ("attachment.digest_mismatch", "SealError",
                                  "an attachment's bytes are not the ones its signed reference "
                                  "names (altered, cut short or replaced)")

    # -- the server's store and the client's outbox ----------------------------------------------
    STORE_FAILED = "store.failed", "StoreError", "the store could not commit or read"
    STORE_OPEN_FAILED = "store.open_failed", "StoreError", "the database cannot be opened"
    STORE_CLOSED = "store.closed", "StoreError", "the store is closed"
    STORE_READ_ONLY = ("store.read_only", "StoreError",
                       "the store was opened without its row-MAC key: read only")
    STORE_READ_FAILED = "store.read_failed", "StoreError", "reading the database failed"
    STORE_WRITE_FAILED = "store.write_failed", "StoreError", "writing the database failed"
    STORE_COMMIT_FAILED = "store.commit_failed", "StoreError", "a commit failed"
    STORE_SESSION_LOST = ("store.session_lost", "StoreError",
                          "a database session of the server ended (failover, a cut network): it "
                          "closes its sessions and starts again once the database answers")
    STORE_COPY_REFUSED = ("store.copy_refused", "StoreError",
                          "the log cannot be copied into that store as it is")
    STORE_DAMAGED = ("store.damaged", "StoreError",
                     "the database is damaged: restore it from a backup")
    STORE_UNAUTHENTICATED_ROWS = ("store.unauthenticated_rows", "StoreError",
                                  "database rows do not carry a valid row MAC")
    STORE_INCONSISTENT = ("store.inconsistent", "StoreError",
                          "the database does not extend the checkpoint the log published")
    STORE_ROLLED_BACK = ("store.rolled_back", "StoreError",
                         "the database is older than the checkpoint the log published")
    STORE_CHECKPOINT_FILE = ("store.checkpoint_file", "StoreError",
                             "the .checkpoint file beside the database is unreadable or invalid")
    STORE_CHECKPOINT_MISSING = ("store.checkpoint_missing", "StoreError",
                                "the .checkpoint file beside the database is missing")
    STORE_CHECKPOINT_WRITE_FAILED = ("store.checkpoint_write_failed", "StoreError",
                                     "the .checkpoint file cannot be written")
    STORE_RESTORES_UNREADABLE = ("store.restores_unreadable", "StoreError",
                                 "the record of past restores is unreadable (logged; the server "
                                 "still starts)")
    STORE_OUTBOX = "store.outbox", "StoreError", "the client's outbox is unreadable"
    STORE_OUTBOX_CONFLICT = ("store.outbox_conflict", "StoreError",
                             "the outbox disagrees with what the server reported")
    STORE_OUTBOX_UNKNOWN = ("store.outbox_unknown", "StoreError",
                            "no such envelope in the outbox")

    # -- backup and restore ----------------------------------------------------------------------
    BACKUP_FAILED = "backup.failed", "BackupError", "a backup could not be taken"
    BACKUP_EXISTS = "backup.exists", "BackupError", "the backup file already exists"
    BACKUP_NO_CHECKPOINT = ("backup.no_checkpoint", "BackupError",
                            "the server has signed no checkpoint yet: start it once first")
    BACKUP_UNVERIFIED = ("backup.unverified", "BackupError",
                         "the copy taken does not verify against the log's checkpoint")
    RESTORE_BAD_ARCHIVE = "restore.bad_archive", "BackupError", "a backup archive is damaged"
    RESTORE_BAD_LOG = ("restore.bad_log", "BackupError",
                       "the archived log does not verify")
    RESTORE_BAD_PUBLISHED = ("restore.bad_published", "BackupError",
                             "the published checkpoints given are unreadable")
    RESTORE_WRONG_LOG = ("restore.wrong_log", "BackupError",
                         "the archive or checkpoints are of another deployment's log")
    RESTORE_INCONSISTENT = ("restore.inconsistent", "BackupError",
                            "the archive contradicts a published checkpoint: not restorable")
    RESTORE_ROLLS_BACK = ("restore.rolls_back", "BackupError",
                          "the archive is older than a published checkpoint (--force to accept)")
    RESTORE_SERVER_RUNNING = ("restore.server_running", "BackupError",
                              "the server is running: stop it before restoring")
    RESTORE_HASH_MISMATCH = ("restore.hash_mismatch", "BackupError",
                             "an archived file does not match the manifest's hash")
    RESTORE_FAILED = "restore.failed", "BackupError", "the restore could not write its files"

    # -- configuration and the command line --------------------------------------------------------
    CONFIG_INVALID = "config.invalid", "ConfigError", "a configuration file or setting is invalid"
    KEYS_BAD_PUBLIC_FILE = ("keys.bad_public_file", "BadPublicFile",
                            "a file handed over is not the public key or signed document expected")
    CEREMONY_INVALID = ("ceremony.invalid", "CeremonyError",
                        "a key ceremony was asked for what cannot be signed (a time, role or name)")
    CEREMONY_KEY_EXISTS = ("ceremony.key_exists", "CeremonyError",
                           "a key file of that name exists: a key is never replaced")
    CEREMONY_NAME_MISMATCH = ("ceremony.name_mismatch", "CeremonyError",
                              "the public key file names another member than the one enrolled")
    CEREMONY_SAFETY_MISMATCH = ("ceremony.safety_mismatch", "CeremonyError",
                                "a key's safety number is not the one read out")
    CEREMONY_NO_KEY = ("ceremony.no_key", "CeremonyError",
                       "this home holds no such key (or several authority keys to choose from)")
    CEREMONY_WRITE_FAILED = ("ceremony.write_failed", "CeremonyError",
                             "a key or signed file could not be written (none is half-written)")
    CEREMONY_NO_PASSPHRASE = ("ceremony.no_passphrase", "CeremonyError",
                              "a private key needs a passphrase and none can be asked for")
    CONFIG_INSECURE_LISTEN = ("config.insecure_listen", "InsecureListen",
                              "the server would listen on a public address without TLS")
    CONFIG_NO_DEPLOYMENT = ("config.no_deployment", "NoDeployment",
                            "no deployment is set up here")
    CONFIG_TLS = "config.tls", "TlsError", "a TLS certificate or key is unusable"
    CONFIG_TLS_REQUIRED = ("config.tls_required", "TlsRequired",
                           "the profile needs TLS (wss://) to reach this server")
    CONFIG_UNKNOWN_PROFILE = ("config.unknown_profile", "UnknownProfile",
                              "no profile of that name")
    DESCRIPTOR_INVALID = ("descriptor.invalid", "DescriptorError",
                          "a deployment descriptor is malformed, too large or names a bad key")
    DESCRIPTOR_BAD_SIGNATURE = ("descriptor.bad_signature", "DescriptorError",
                                "a deployment descriptor is not signed by the log key it names "
                                "(edited, or forged)")
    JOIN_FINGERPRINT_MISMATCH = ("join.fingerprint_mismatch", "JoinRefused",
                                 "a fingerprint in the descriptor is not the one expected: "
                                 "nothing was written")
    JOIN_REFUSED = ("join.refused", "JoinRefused",
                    "joining was not confirmed, or would overwrite or misuse a file")
    SERVER_PIN_REFUSED = ("server.pin_refused", "PinRefused",
                          "the authority key was not pinned (mismatch, unconfirmed, private "
                          "key, or a different key already pinned)")
    USAGE_INVALID = "usage.invalid", "UsageProblem", "the command line names what cannot be used"

    # -- the auditor -------------------------------------------------------------------------
    AUDIT_FAILED = "audit.failed", "AuditFailure", "the audit found the log at fault"
    AUDIT_BAD_EXPORT = "audit.bad_export", "ExportError", "an audit export is invalid"
    REPORT_INVALID = "report.invalid", "ReportError", "a report cannot be made"
    REPORT_BAD_ENTRY = ("report.bad_entry", "ReportError",
                        "a log entry the report reads is malformed")
    REPORT_BAD_PERIOD = ("report.bad_period", "ReportError",
                         "the report's period is invalid")
    PLOT_FAILED = "plot.failed", "PlotError", "a plot could not be drawn"
    PLOT_UNAVAILABLE = ("plot.unavailable", "PlotUnavailable",
                        "plotting needs matplotlib, which is not installed")
    PLOT_BAD_FORMAT = "plot.bad_format", "PlotError", "a plot file must end in .svg or .png"
    PLOT_WRITE_FAILED = "plot.write_failed", "PlotError", "the plot file cannot be written"

    # -- any part ------------------------------------------------------------------------------
    PROTOCOL_VIOLATION = ("protocol.violation", "ProtocolViolation",
                          "a request that the roster, an agreement or the session refuses")
    INTERNAL_ERROR = "internal.error", "HotlineError", "a bug in hotline: report it"
    INTERNAL_STATE = ("internal.state", "HotlineError",
                      "a bug in hotline (a step out of order): report it")


def markdown_table() -> str:
    """The README's table of every code: code, class, meaning (one row each, registry order)."""
    rows = ["| Code | Raised as | Meaning |", "|---|---|---|"]
    rows += [f"| `{code.value}` | `{code.raised_as}` | {code.meaning} |" for code in Code]
    return "\n".join(rows) + "\n"
