"""The one exception type of the needle client, for both modes."""

# The code of each HTTP status of docs/HTTP.md, for an error answer whose body
# is not needle's JSON error (a proxy in between, say).
_CODE_OF_STATUS = {
    400: "invalid_argument",
    401: "unauthenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "already_exists",
    413: "payload_too_large",
    414: "invalid_argument",   # the URL is too long (libmicrohttpd's own HTML answer)
    415: "unsupported_media_type",
    431: "payload_too_large",  # the headers are too large (likewise)
    501: "unsupported",
    503: "unavailable",
    507: "disk_full",
}


class NeedleError(Exception):
    """A failed call.

    code    -- the stable code name, as in HTTP error bodies ("invalid_argument",
               "not_found", ...); "unavailable" when the server cannot be reached.
    message -- what went wrong, naming the problem.
    status  -- the HTTP status; None in embedded mode and for problems the
               client finds before sending anything.
    """

    def __init__(self, code, message, status=None):
        super().__init__(code, message, status)
        self.code = code
        self.message = message
        self.status = status

    def __str__(self):
        where = f" (HTTP {self.status})" if self.status is not None else ""
        return f"{self.code}: {self.message}{where}"

    @classmethod
    def from_status(cls, status, message):
        """The error of an answer that is not needle's JSON error: its code
        from the HTTP status ("internal" for a status docs/HTTP.md lacks)."""
        return cls(_CODE_OF_STATUS.get(status, "internal"), message, status)


def invalid(message):
    return NeedleError("invalid_argument", message)
