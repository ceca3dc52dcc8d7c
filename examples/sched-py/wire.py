"""The wire every UmlMicro server shares (docs/contract/README.md): one JSON-RPC 2.0 message per line on standard
input, one answer per request on standard output, positional params checked against the contract's types.

Standard library only. This module knows nothing about Sched; sched.py gives it a table of methods.
"""
import json
import sys

MAX_LINE = 16 * 1024 * 1024          # RpcWire.MaxMessageBytes: a longer line is refused without being held
MAX_DEPTH = 64                       # deeper JSON is a parse error

PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, REFUSED = -32700, -32600, -32601, -32602, -32000

INT_RANGES = {"int32": (-2**31, 2**31 - 1), "int64": (-2**63, 2**63 - 1),
              "uint32": (0, 2**32 - 1), "uint64": (0, 2**64 - 1)}


class RpcError(Exception):
    """An error answer: code and message (the method ran none of its changes)."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


def refuse(message):
    """A protocol violation (-32000): the supervisor's books and ours disagree."""
    return RpcError(REFUSED, message)


# --- types ------------------------------------------------------------------------------------------------------
# A type is "int32"/"int64"/"bool"/"string", ("list", T), ("enum", names) or ("object", {field: (T, default)}),
# where default is REQUIRED for a member without one. check() returns the value with defaults filled in.

REQUIRED = object()


def check(value, kind, where):
    def bad(what):
        return RpcError(INVALID_PARAMS, f"{where}: {what}")

    if isinstance(kind, str):
        if kind in INT_RANGES:
            if type(value) is not int:
                raise bad(f"expected an integer ({kind}), got {json.dumps(value)[:40]}")
            low, high = INT_RANGES[kind]
            if not low <= value <= high:
                raise bad(f"{value} is out of {kind}'s range")
            return value
        if kind == "bool":
            if type(value) is not bool:
                raise bad("expected true or false")
            return value
        if kind == "string":
            if type(value) is not str:
                raise bad("expected a string")
            return value
        raise AssertionError(kind)
    tag, arg = kind
    if tag == "list":
        if type(value) is not list:
            raise bad("expected a list")
        return [check(v, arg, f"{where}[{i}]") for i, v in enumerate(value)]
    if tag == "enum":
        if type(value) is not str or value not in arg:
            raise bad(f"expected one of {', '.join(arg)}")
        return value
    if tag == "object":
        if type(value) is not dict:
            raise bad("expected an object")
        out = {}
        for field, (ftype, default) in arg.items():
            if field in value:
                out[field] = check(value[field], ftype, f"{where}.{field}")
            elif default is REQUIRED:
                raise bad(f"missing member {field}")
            else:
                out[field] = default
        return out
    raise AssertionError(tag)


# --- a method table ---------------------------------------------------------------------------------------------

class Method:
    """One contract method: its params ((name, type) in order) and the function that runs it."""

    def __init__(self, params, run):
        self.params = params
        self.run = run

    def bind(self, params):
        if type(params) is dict:                        # by name: the built-in servers take it too
            unknown = set(params) - {name for name, _ in self.params}
            if unknown:
                raise RpcError(INVALID_PARAMS, f"unknown parameter {sorted(unknown)[0]}")
            missing = [name for name, _ in self.params if name not in params]
            if missing:
                raise RpcError(INVALID_PARAMS, f"missing parameter {missing[0]}")
            params = [params[name] for name, _ in self.params]
        if type(params) is not list:
            raise RpcError(INVALID_PARAMS, "params must be an array")
        if len(params) != len(self.params):
            raise RpcError(INVALID_PARAMS, f"expected {len(self.params)} params, got {len(params)}")
        return [check(value, kind, name) for value, (name, kind) in zip(params, self.params)]


# --- framing ----------------------------------------------------------------------------------------------------

def lines(stream):
    """Yields each complete line (bytes, without its end), or None for a line over MAX_LINE (skipped unheld).
    A last line without its newline was cut off: it is dropped."""
    while True:
        line = stream.readline(MAX_LINE + 2)
        if not line:
            return
        if not line.endswith(b"\n"):
            if len(line) < MAX_LINE + 2:
                return                                  # the end of input in the middle of a line
            while True:                                 # too long: read on to its end without keeping it
                rest = stream.readline(1 << 20)
                if not rest:
                    return
                if rest.endswith(b"\n"):
                    break
            yield None
            continue
        line = line[:-1]
        if line.endswith(b"\r"):
            line = line[:-1]
        if len(line) > MAX_LINE:
            yield None
            continue
        yield line


def _no_constant(name):
    raise ValueError(f"{name} is not JSON")


def _depth_ok(value):
    stack = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, (list, dict)):
            if depth > MAX_DEPTH:
                return False
            stack.extend((c, depth + 1) for c in (v.values() if isinstance(v, dict) else v))
    return True


def parse(line):
    """The JSON value of a line, or an RpcError(-32700)."""
    try:
        value = json.loads(line.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise RpcError(PARSE_ERROR, f"parse error: {str(e)[:80]}")
    if not _depth_ok(value):
        raise RpcError(PARSE_ERROR, f"parse error: nested deeper than {MAX_DEPTH}")
    return value


class Server:
    """Reads messages one at a time, runs each completely, answers requests in order."""

    def __init__(self, name, methods, log_prefix):
        self.name = name
        self.methods = methods
        self.log_prefix = log_prefix
        self.out = sys.stdout.buffer
        self.stopping = False

    def log(self, text):
        print(f"{self.log_prefix}: {text}", file=sys.stderr, flush=True)

    def send(self, message):
        self.out.write(json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n")
        self.out.flush()

    def answer_error(self, id_, err):
        self.send({"jsonrpc": "2.0", "id": id_, "error": {"code": err.code, "message": err.message}})

    def serve(self, stream):
        for line in lines(stream):
            if line is None:
                self.answer_error(None, RpcError(INVALID_REQUEST, f"line over {MAX_LINE} bytes"))
                continue
            if not line.strip():
                continue                                    # an empty line is no message
            self.handle(line)
            if self.stopping:
                break

    def handle(self, line):
        try:
            message = parse(line)
        except RpcError as e:
            self.answer_error(None, e)
            return
        if type(message) is not dict:
            self.answer_error(None, RpcError(INVALID_REQUEST, "not a request object (batches are not taken)"))
            return
        has_id = "id" in message
        id_ = message.get("id")
        usable_id = type(id_) in (int, str)
        if has_id and not usable_id:
            self.answer_error(None, RpcError(INVALID_REQUEST, "an id must be a string or an integer"))
            return
        method = message.get("method")
        if message.get("jsonrpc") != "2.0" or type(method) is not str:
            err = RpcError(INVALID_REQUEST, "jsonrpc must be \"2.0\" and method a string")
            self.answer_error(id_ if has_id else None, err)
            return
        try:
            entry = self.methods.get(method)
            if entry is None:
                raise RpcError(METHOD_NOT_FOUND, f"no method {method}")
            args = entry.bind(message.get("params", []))
            result = entry.run(*args)
        except RpcError as e:
            if has_id:
                self.answer_error(id_, e)
            else:
                self.log(f"refused a message: {method} (a notification, so not answered): error {e.code}: {e.message}")
            return
        if has_id:
            self.send({"jsonrpc": "2.0", "id": id_, "result": result})
