"""The one exception type for configuration problems."""


class ConfigError(Exception):
    """A configuration problem: which file, which JSON path, what was expected.

    str() gives the one line the CLI prints, e.g.
    ``tb_gateway.json: thingsboard.port: expected an integer 1-65535, got "abc"``.
    """

    def __init__(self, file, path, message):
        # type: (str, str, str) -> None
        self.file = file
        self.path = path
        self.message = message
        super(ConfigError, self).__init__(str(self))

    def __str__(self):
        where = self.file
        if self.path:
            where += ": " + self.path
        return "%s: %s" % (where, self.message)
