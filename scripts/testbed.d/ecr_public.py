#!/usr/bin/env python3
"""Stand-in for the Amazon ECR Public API, for the wharf test bed.

moto has no ECR Public API, so the bed serves the calls wharf makes with this
small server. It speaks the service's real wire protocol (AWS JSON 1.1: POST /,
`X-Amz-Target: SpencerFrontendService.<Operation>`, content type
`application/x-amz-json-1.1`, errors as `{"__type": ..., "message": ...}`),
so the AWS SDK reaches it unchanged through `AWS_ENDPOINT_URL_ECR_PUBLIC`.

Shapes follow the ecr-public 2020-10-30 service model. Implemented:
GetAuthorizationToken, DescribeRegistries, DescribeRepositories,
CreateRepository, DeleteRepository. Every other operation answers
InvalidParameterException. Requests must carry a SigV4 Authorization header
scoped to region us-east-1 and service ecr-public, as the real service (which
lives only in us-east-1) insists; signatures themselves are not verified.
State is kept in memory only. Standard library only.
"""

import argparse
import base64
import json
import re
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TARGET_PREFIX = "SpencerFrontendService."
CONTENT_TYPE = "application/x-amz-json-1.1"
REPOSITORY_NAME = re.compile(r"(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*")
CREDENTIAL_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/([^/]+)/([^/]+)/aws4_request")
TOKEN_LIFETIME_SECONDS = 12 * 3600
CATALOG_INPUT_FIELDS = ("description", "architectures", "operatingSystems", "aboutText", "usageText")


class ApiError(Exception):
    def __init__(self, status, error_type, message):
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message


def invalid(message):
    return ApiError(400, "InvalidParameterException", message)


class Registry:
    """The in-memory public registry of one account."""

    def __init__(self, account, alias, password, host):
        self.account = account
        self.alias = alias
        self.password = password
        self.host = host
        self.lock = threading.Lock()
        self.repositories = {}  # name -> {"repository": {...}, "catalogData": {...}}

    def repository_shape(self, name, created_at):
        return {
            "repositoryArn": f"arn:aws:ecr-public::{self.account}:repository/{name}",
            "registryId": self.account,
            "repositoryName": name,
            "repositoryUri": f"{self.host}/{self.alias}/{name}",
            "createdAt": created_at,
        }

    def check_registry_id(self, body):
        registry_id = body.get("registryId")
        if registry_id is None:
            return
        if not isinstance(registry_id, str) or not re.fullmatch(r"[0-9]{12}", registry_id):
            raise invalid("Invalid parameter at 'registryId' failed to satisfy constraint: "
                          "'must satisfy regular expression pattern: [0-9]{12}'")

    def owns(self, body):
        return body.get("registryId", self.account) == self.account

    @staticmethod
    def check_name(name):
        if not isinstance(name, str) or not (2 <= len(name) <= 205) or not REPOSITORY_NAME.fullmatch(name):
            raise invalid(f"Invalid parameter at 'repositoryName' failed to satisfy constraint: "
                          f"'must satisfy regular expression pattern: {REPOSITORY_NAME.pattern}' "
                          f"and length between 2 and 205 (got {name!r})")

    @staticmethod
    def page(items, body, key):
        max_results = body.get("maxResults")
        if max_results is not None and (not isinstance(max_results, int) or not 1 <= max_results <= 1000):
            raise invalid("Invalid parameter at 'maxResults' failed to satisfy constraint: "
                          "'must be between 1 and 1000'")
        start = 0
        token = body.get("nextToken")
        if token is not None:
            try:
                start = int(base64.b64decode(token).decode())
            except (ValueError, UnicodeDecodeError):
                raise invalid("Invalid parameter at 'nextToken': the token is not valid") from None
        size = max_results or 100
        result = {key: items[start:start + size]}
        if start + size < len(items):
            result["nextToken"] = base64.b64encode(str(start + size).encode()).decode()
        return result

    # Operations -------------------------------------------------------------

    def GetAuthorizationToken(self, body):
        token = base64.b64encode(f"AWS:{self.password}".encode()).decode()
        return {"authorizationData": {"authorizationToken": token,
                                      "expiresAt": time.time() + TOKEN_LIFETIME_SECONDS}}

    def DescribeRegistries(self, body):
        registry = {
            "registryId": self.account,
            "registryArn": f"arn:aws:ecr-public::{self.account}:registry/{self.account}",
            "registryUri": f"{self.host}/{self.alias}",
            "verified": False,
            "aliases": [{"name": self.alias, "status": "ACTIVE",
                         "primaryRegistryAlias": True, "defaultRegistryAlias": True}],
        }
        return self.page([registry], body, "registries")

    def DescribeRepositories(self, body):
        self.check_registry_id(body)
        names = body.get("repositoryNames")
        with self.lock:
            known = self.repositories if self.owns(body) else {}
            if names is None:
                repositories = [known[name]["repository"] for name in sorted(known)]
                return self.page(repositories, body, "repositories")
            if not isinstance(names, list) or not 1 <= len(names) <= 100:
                raise invalid("Invalid parameter at 'repositoryNames': between 1 and 100 names expected")
            if "maxResults" in body or "nextToken" in body:
                raise invalid("maxResults and nextToken cannot be used together with repositoryNames")
            for name in names:
                self.check_name(name)
            for name in names:
                if name not in known:
                    raise ApiError(400, "RepositoryNotFoundException",
                                   f"The repository with name '{name}' does not exist in the registry "
                                   f"with id '{body.get('registryId', self.account)}'")
            return {"repositories": [known[name]["repository"] for name in dict.fromkeys(names)]}

    def CreateRepository(self, body):
        name = body.get("repositoryName")
        if name is None:
            raise invalid("Missing required parameter 'repositoryName'")
        self.check_name(name)
        catalog_input = body.get("catalogData") or {}
        if not isinstance(catalog_input, dict):
            raise invalid("Invalid parameter at 'catalogData': a structure is expected")
        tags = body.get("tags") or []
        if not isinstance(tags, list) or any(not isinstance(t, dict) or not t.get("Key") for t in tags):
            raise ApiError(400, "InvalidTagParameterException", "Each tag needs a non-empty 'Key'")
        catalog = {k: catalog_input[k] for k in CATALOG_INPUT_FIELDS if k in catalog_input}
        catalog["marketplaceCertified"] = False
        with self.lock:
            if name in self.repositories:
                raise ApiError(400, "RepositoryAlreadyExistsException",
                               f"The repository with name '{name}' already exists in the registry "
                               f"with id '{self.account}'")
            repository = self.repository_shape(name, time.time())
            self.repositories[name] = {"repository": repository, "catalogData": catalog, "tags": tags}
        return {"repository": repository, "catalogData": catalog}

    def DeleteRepository(self, body):
        self.check_registry_id(body)
        name = body.get("repositoryName")
        if name is None:
            raise invalid("Missing required parameter 'repositoryName'")
        self.check_name(name)
        with self.lock:
            if not self.owns(body) or name not in self.repositories:
                raise ApiError(400, "RepositoryNotFoundException",
                               f"The repository with name '{name}' does not exist in the registry "
                               f"with id '{body.get('registryId', self.account)}'")
            entry = self.repositories.pop(name)
        return {"repository": entry["repository"]}


OPERATIONS = ("GetAuthorizationToken", "DescribeRegistries", "DescribeRepositories",
              "CreateRepository", "DeleteRepository")


def make_handler(registry, quiet):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "ecr-public-standin"

        def log_message(self, fmt, *args):
            if not quiet:
                sys.stderr.write("%s %s\n" % (self.log_date_time_string(), fmt % args))

        def send_json(self, status, payload, error_type=None):
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
            if error_type:
                self.send_header("x-amzn-ErrorType", error_type)
            self.end_headers()
            self.wfile.write(data)

        def send_error_json(self, err):
            self.send_json(err.status, {"__type": err.error_type, "message": err.message}, err.error_type)

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                self.send_json(200, self.dispatch(raw))
            except ApiError as err:
                self.send_error_json(err)
            except Exception as err:  # keep serving; report as the service would
                self.send_error_json(ApiError(500, "ServerException", f"internal error: {err}"))

        def do_GET(self):
            self.send_error_json(ApiError(400, "InvalidParameterException",
                                          "Only POST / with X-Amz-Target is supported"))

        def dispatch(self, raw):
            if self.path.split("?", 1)[0] != "/":
                raise ApiError(404, "UnknownOperationException", f"No such path: {self.path}")
            auth = self.headers.get("Authorization") or ""
            scope = CREDENTIAL_SCOPE.search(auth)
            if not auth.startswith("AWS4-HMAC-SHA256 ") or not scope:
                raise ApiError(403, "MissingAuthenticationTokenException", "Missing Authentication Token")
            region, service = scope.groups()
            if service != "ecr-public":
                raise ApiError(403, "InvalidSignatureException",
                               f"Credential should be scoped to correct service: 'ecr-public'. (got {service!r})")
            if region != "us-east-1":
                raise ApiError(403, "InvalidSignatureException",
                               f"Credential should be scoped to a valid region: ECR Public is only "
                               f"served in 'us-east-1' (got {region!r})")
            target = self.headers.get("X-Amz-Target") or ""
            operation = target[len(TARGET_PREFIX):] if target.startswith(TARGET_PREFIX) else None
            if operation not in OPERATIONS:
                raise invalid(f"Unsupported operation {target!r}: this stand-in implements "
                              + ", ".join(OPERATIONS))
            try:
                body = json.loads(raw) if raw.strip() else {}
            except ValueError:
                raise ApiError(400, "SerializationException", "The request body is not valid JSON") from None
            if not isinstance(body, dict):
                raise ApiError(400, "SerializationException", "The request body must be a JSON object")
            return getattr(registry, operation)(body)

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5002)
    parser.add_argument("--account", default="123456789012")
    parser.add_argument("--alias", required=True)
    parser.add_argument("--password", required=True, help="password that GetAuthorizationToken hands out")
    parser.add_argument("--registry-host", default="public.ecr.aws")
    parser.add_argument("--quiet", action="store_true", help="do not log each request")
    args = parser.parse_args()
    registry = Registry(args.account, args.alias, args.password, args.registry_host)
    server = ThreadingHTTPServer((args.host, args.port), make_handler(registry, args.quiet))
    server.daemon_threads = True
    sys.stderr.write(f"ecr-public stand-in listening on http://{args.host}:{args.port}\n")
    server.serve_forever()


if __name__ == "__main__":
    main()
