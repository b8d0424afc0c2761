"""A real Keystone for the ``auth_strategy = keystone`` tests: PyPI's ``keystone`` on loopback.

- ``ensure_venv()``: Keystone and gunicorn in their own virtual environment at a fixed path
  (``BARYON_KEYSTONE_VENV``, default ``/var/cache/baryon/keystone-venv``), built once under a lock
  and reused while its stamp names the same requirements (a cold build takes ~45 s).
- ``Keystone(base_dir).start()``: SQLite database and fernet keys under ``base_dir``;
  ``keystone-manage db_sync``, ``fernet_setup``, ``bootstrap`` (admin user and project, the admin,
  member, reader and service roles, the identity endpoint); then gunicorn on a free loopback port,
  in its own session, polled until it answers; ``stop()`` ends it by its process group.
- Setup through Keystone's own API (``admin_token``, ``project``, ``user``, ``register``): the
  tests' projects and users, the ``neutron`` service user Baryon validates tokens with, and the
  ``network`` endpoint the ``openstack`` CLI finds in the catalog.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import fcntl
import grp
import os
import pwd
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.server import free_port, stop_group

VENV = Path(os.environ.get("BARYON_KEYSTONE_VENV", "/var/cache/baryon/keystone-venv"))
REQUIREMENTS = ("keystone", "gunicorn")
PASSWORD = "baryon-keystone-test"  # every user's: loopback only, a throwaway database
REGION = "RegionOne"


def ensure_venv(venv: Path = VENV) -> Path:
    """The virtual environment with Keystone, built if missing or made for other requirements."""
    stamp = venv / ".baryon-keystone-stamp"
    wanted = " ".join(REQUIREMENTS)
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / (venv.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build at a time, whatever the number of sessions
        if stamp.exists() and stamp.read_text() == wanted:
            return venv
        shutil.rmtree(venv, ignore_errors=True)
        python = shutil.which("python3") or sys.executable
        subprocess.run([python, "-m", "venv", str(venv)], check=True, timeout=120)
        subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
                        *REQUIREMENTS], check=True, timeout=900)
        stamp.write_text(wanted)
    return venv


class Keystone:
    def __init__(self, base_dir: Path, venv: Path = VENV, sections: str = "", threads: int = 4):
        """``sections``: more keystone.conf sections (a ``[cache]`` for instance), appended as given;
        ``threads``: gunicorn's (SQLite refuses concurrent writers: "database is locked" under load)."""
        self.base_dir = base_dir
        self.sections = sections
        self.threads = threads
        self.venv = venv
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"  # where operators point www_authenticate_uri and auth_url
        self.url = self.base + "/v3"
        self.config = base_dir / "keystone.conf"
        self.log = base_dir / "keystone.log"
        self.process: subprocess.Popen | None = None
        self.roles: dict[str, str] = {}

    def _manage(self, *args: str) -> None:
        command = [str(self.venv / "bin" / "keystone-manage"), "--config-file", str(self.config), *args]
        with open(self.log, "ab") as log:
            subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT, timeout=300)

    def start(self, timeout: float = 60.0) -> "Keystone":
        self.base_dir.mkdir(parents=True, exist_ok=True)
        keys = self.base_dir / "fernet-keys"
        self.config.write_text(
            f"[DEFAULT]\nlog_file = {self.log}\n"
            f"[database]\nconnection = sqlite:///{self.base_dir / 'keystone.sqlite'}\n"
            f"[token]\nprovider = fernet\n"
            f"[fernet_tokens]\nkey_repository = {keys}\n"
            # NOTE: bcrypt's minimum cost: each password check costs ~1 ms, not ~250 ms.
            f"[identity]\npassword_hash_rounds = 4\n{self.sections}\n")
        user, group = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
        self._manage("db_sync")
        self._manage("fernet_setup", "--keystone-user", user, "--keystone-group", group)
        self._manage("bootstrap", "--bootstrap-password", PASSWORD, "--bootstrap-region-id", REGION,
                     "--bootstrap-admin-url", self.url, "--bootstrap-public-url", self.url,
                     "--bootstrap-internal-url", self.url)
        # NOTE: Keystone parses the process's command line as its own options: gunicorn gets its
        # options from GUNICORN_CMD_ARGS and the application from ./gunicorn.conf.py instead. No
        # control socket: its default path is shared by every gunicorn of the user.
        (self.base_dir / "gunicorn.conf.py").write_text('wsgi_app = "keystone.wsgi.api:application"\n')
        env = dict(os.environ, OS_KEYSTONE_CONFIG_DIR=str(self.base_dir), GUNICORN_CMD_ARGS=(
            f"--bind 127.0.0.1:{self.port} --workers 1 --threads {self.threads} --no-control-socket"))
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [str(self.venv / "bin" / "gunicorn")], cwd=self.base_dir, env=env, stdout=log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"keystone exited with {self.process.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.url, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            self.stop()
            raise RuntimeError(f"keystone did not answer in {timeout}s:\n{self.log.read_text()[-3000:]}")
        admin = self.admin_token()
        self.roles = {r["name"]: r["id"] for r in self._call(admin, "GET", "/roles")["roles"]}
        return self

    def stop(self, timeout: float = 15.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        stop_group(self.process, timeout)

    # ------------------------------------------------------------ Keystone's API

    def token(self, user: str, project: str, password: str = PASSWORD) -> str:
        """A project-scoped token for ``user`` (names, in the Default domain)."""
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"id": "default"}, "password": password}}},
            "scope": {"project": {"name": project, "domain": {"id": "default"}}}}}
        response = httpx.post(self.url + "/auth/tokens", json=body, timeout=30)
        assert response.status_code == 201, response.text
        return response.headers["X-Subject-Token"]

    def admin_token(self) -> str:
        return self.token("admin", "admin")

    def _call(self, token: str, method: str, path: str, body: dict | None = None,
              headers: dict[str, str] | None = None) -> dict:
        response = httpx.request(method, self.url + path, json=body, timeout=30,
                                 headers={"X-Auth-Token": token, **(headers or {})})
        assert response.status_code < 300, f"{method} {path}: {response.status_code} {response.text}"
        return response.json() if response.content else {}

    def project(self, name: str) -> str:
        body = {"project": {"name": name, "domain_id": "default"}}
        return self._call(self.admin_token(), "POST", "/projects", body)["project"]["id"]

    def user(self, name: str, project_id: str, role: str) -> str:
        """A user with ``role`` on the project (Keystone's implied roles add the lesser ones)."""
        admin = self.admin_token()
        body = {"user": {"name": name, "domain_id": "default", "password": PASSWORD}}
        user_id = self._call(admin, "POST", "/users", body)["user"]["id"]
        self._call(admin, "PUT", f"/projects/{project_id}/users/{user_id}/roles/{self.roles[role]}")
        return user_id

    def register(self, service_type: str, name: str, url: str) -> None:
        """A catalog entry (public, internal, admin) for a service at ``url``."""
        admin = self.admin_token()
        service = self._call(admin, "POST", "/services", {"service": {"type": service_type, "name": name}})
        for interface in ("public", "internal", "admin"):
            self._call(admin, "POST", "/endpoints", {"endpoint": {
                "service_id": service["service"]["id"], "interface": interface, "url": url, "region_id": REGION}})

    def revoke(self, token: str) -> None:
        self._call(self.admin_token(), "DELETE", "/auth/tokens", headers={"X-Subject-Token": token})

    def authtoken_section(self, username: str, project: str) -> str:
        """``[keystone_authtoken]`` as an operator writes it in neutron.conf."""
        return (f"[keystone_authtoken]\nwww_authenticate_uri = {self.base}\nauth_url = {self.base}\n"
                f"auth_type = password\nusername = {username}\npassword = {PASSWORD}\nproject_name = {project}\n"
                f"user_domain_name = Default\nproject_domain_name = Default\nregion_name = {REGION}\n")
