"""A Hugging Face Hub-compatible HTTP server on 127.0.0.1 for tests (stdlib only).

Implements what the real ``huggingface_hub`` client uses to create repos, upload
folders (preupload answers "regular", so contents arrive base64 in the NDJSON commit)
and download files at a pinned revision (``resolve`` HEAD/GET, model info). Every
commit is an immutable snapshot on disk; ``main`` points at the newest.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse


class LocalHubServer:
    """Context manager running the fixture Hub; ``endpoint`` is its base URL."""

    def __init__(self, root: str | Path, port: int = 0) -> None:
        self.root = Path(root)
        self.port = port
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.endpoint = ""

    # ------------------------------------------------------------------ storage
    def _repo_dir(self, repo_id: str) -> Path:
        return self.root / repo_id.replace("/", "--")

    def _refs(self, repo_id: str) -> dict:
        path = self._repo_dir(repo_id) / "refs.json"
        return json.loads(path.read_text()) if path.is_file() else {}

    def repo_exists(self, repo_id: str) -> bool:
        """True if the repo was created."""
        return (self._repo_dir(repo_id) / "refs.json").is_file()

    def create_repo(self, repo_id: str) -> None:
        """Create an empty repo (no-op if it exists)."""
        with self._lock:
            d = self._repo_dir(repo_id)
            d.mkdir(parents=True, exist_ok=True)
            if not (d / "refs.json").is_file():
                (d / "refs.json").write_text(json.dumps({"main": None, "commits": []}))

    def head(self, repo_id: str) -> str:
        """Sha of ``main``."""
        return self._refs(repo_id)["main"]

    def add_commit(self, repo_id: str, files: dict[str, bytes], message: str = "") -> str:
        """Add a commit whose tree is the previous tree updated with ``files``; returns its sha."""
        self.create_repo(repo_id)
        with self._lock:
            refs = self._refs(repo_id)
            tree: dict[str, str] = {}
            if refs["main"]:
                tree = json.loads((self._repo_dir(repo_id) / "commits" / f"{refs['main']}.json").read_text())["tree"]
            blobs = self._repo_dir(repo_id) / "blobs"
            blobs.mkdir(exist_ok=True)
            for path, data in files.items():
                digest = hashlib.sha256(data).hexdigest()
                (blobs / digest).write_bytes(data)
                tree[path] = digest
            sha = hashlib.sha1(json.dumps([refs["main"], tree, message, time.time_ns()]).encode()).hexdigest()
            commits = self._repo_dir(repo_id) / "commits"
            commits.mkdir(exist_ok=True)
            (commits / f"{sha}.json").write_text(json.dumps({"tree": tree, "message": message}))
            refs["main"] = sha
            refs["commits"].append(sha)
            (self._repo_dir(repo_id) / "refs.json").write_text(json.dumps(refs))
            return sha

    def _resolve(self, repo_id: str, revision: str) -> tuple[str, dict[str, str]] | None:
        refs = self._refs(repo_id)
        sha = refs.get("main") if revision == "main" else revision
        path = self._repo_dir(repo_id) / "commits" / f"{sha}.json"
        if not sha or not path.is_file():
            return None
        return sha, json.loads(path.read_text())["tree"]

    # ------------------------------------------------------------------ server
    def __enter__(self) -> LocalHubServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _send(self, code: int, body: bytes = b"", headers: dict | None = None, head: bool = False):
                self.send_response(code)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                # no keep-alive: a pooled connection must not outlive this server (tests reuse the port)
                self.send_header("Connection", "close")
                self.close_connection = True
                self.end_headers()
                if not head:
                    self.wfile.write(body)

            def _json(self, code: int, obj, headers: dict | None = None, head: bool = False):
                self._send(code, json.dumps(obj).encode(), {"Content-Type": "application/json", **(headers or {})},
                           head)

            def _error(self, code: int, error_code: str, message: str, head: bool = False):
                self._json(code, {"error": message}, {"X-Error-Code": error_code, "X-Error-Message": message},
                           head)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))

            def do_HEAD(self):
                self._get(head=True)

            def do_GET(self):
                self._get(head=False)

            def _get(self, head: bool):
                path = unquote(urlparse(self.path).path)
                parts = path.strip("/").split("/")
                if len(parts) >= 5 and parts[2] == "resolve":  # /{org}/{name}/resolve/{rev}/{file...}
                    return self._resolve_file("/".join(parts[:2]), parts[3], "/".join(parts[4:]), head)
                if parts[:2] == ["api", "models"] and len(parts) >= 4:
                    repo_id = "/".join(parts[2:4])
                    revision = parts[5] if len(parts) >= 6 and parts[4] == "revision" else "main"
                    return self._model_info(repo_id, revision, head)
                self._error(404, "EntryNotFound", f"no route {path}", head)

            def _resolve_file(self, repo_id: str, revision: str, filename: str, head: bool):
                if not server.repo_exists(repo_id):
                    return self._error(404, "RepoNotFound", f"repository {repo_id} not found", head)
                resolved = server._resolve(repo_id, revision)
                if resolved is None:
                    return self._error(404, "RevisionNotFound", f"revision {revision} not found", head)
                sha, tree = resolved
                if filename not in tree:
                    return self._error(404, "EntryNotFound", f"{filename} not found at {sha}", head)
                data = (server._repo_dir(repo_id) / "blobs" / tree[filename]).read_bytes()
                etag = f'"{tree[filename]}"'
                self._send(200, data, {"X-Repo-Commit": sha, "ETag": etag, "Content-Type": "application/octet-stream",
                                       "Accept-Ranges": "none"}, head)

            def _model_info(self, repo_id: str, revision: str, head: bool):
                if not server.repo_exists(repo_id):
                    return self._error(404, "RepoNotFound", f"repository {repo_id} not found", head)
                resolved = server._resolve(repo_id, revision)
                if resolved is None:
                    return self._error(404, "RevisionNotFound", f"revision {revision} not found", head)
                sha, tree = resolved
                self._json(200, {"id": repo_id, "modelId": repo_id, "sha": sha, "private": False,
                                 "siblings": [{"rfilename": f} for f in sorted(tree)]}, head=head)

            def do_POST(self):
                path = unquote(urlparse(self.path).path)
                parts = path.strip("/").split("/")
                body = self._body()
                if parts == ["api", "repos", "create"]:
                    payload = json.loads(body or b"{}")
                    repo_id = f"{payload['organization']}/{payload['name']}" if payload.get("organization") \
                        else payload["name"]
                    existed = server.repo_exists(repo_id)
                    server.create_repo(repo_id)
                    if existed:
                        return self._error(409, "RepoExists", "You already created this model repo")
                    return self._json(200, {"url": f"{server.endpoint}/{repo_id}", "name": repo_id})
                if parts == ["api", "validate-yaml"]:  # model card metadata check made before uploading README.md
                    return self._validate_yaml(json.loads(body).get("content", ""))
                if parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] == "preupload":
                    files = json.loads(body)["files"]
                    return self._json(200, {"files": [{"path": f["path"], "uploadMode": "regular",
                                                       "shouldIgnore": False} for f in files]})
                if parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] == "commit":
                    repo_id = "/".join(parts[2:4])
                    if not server.repo_exists(repo_id):
                        return self._error(404, "RepoNotFound", f"repository {repo_id} not found")
                    files, summary = {}, ""
                    for line in body.decode().splitlines():
                        if not line.strip():
                            continue
                        item = json.loads(line)
                        if item["key"] == "header":
                            summary = item["value"].get("summary", "")
                        elif item["key"] == "file":
                            files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
                        else:
                            return self._error(400, "BadRequest", f"unsupported commit operation {item['key']}")
                    sha = server.add_commit(repo_id, files, summary)
                    return self._json(200, {"commitUrl": f"{server.endpoint}/{repo_id}/commit/{sha}",
                                            "commitOid": sha, "pullRequestUrl": None})
                self._error(404, "EntryNotFound", f"no route {path}")

        def validate_yaml(handler, content: str):
            import yaml

            errors = []
            if not content.startswith("---\n") or "\n---" not in content[4:]:
                errors.append({"message": "README.md has no YAML metadata block"})
            else:
                try:
                    meta = yaml.safe_load(content[4:content.index("\n---", 4)])
                    if not isinstance(meta, dict):
                        errors.append({"message": "metadata is not a mapping"})
                except yaml.YAMLError as exc:
                    errors.append({"message": f"invalid YAML: {exc}"})
            handler._json(400 if errors else 200, {"errors": errors, "warnings": []})

        Handler._validate_yaml = validate_yaml
        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._httpd.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
