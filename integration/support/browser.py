"""Headless Chromium (Debian's package) driven over the DevTools protocol, for tests of the pages
Pedigree serves: navigate, read the DOM, run a line of script, click, take screenshots, and
collect console errors. Every host but 127.0.0.1 resolves to nothing, so a page that needs the
network beyond the server fails visibly."""
import asyncio
import base64
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path


def chromium_path():
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    def __init__(self):
        binary = chromium_path()
        if not binary:
            raise RuntimeError("chromium is not installed (script/bootstrap installs Debian's chromium)")
        self.profile = tempfile.mkdtemp(prefix="pedigree-chromium-")
        self.process = subprocess.Popen(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
             "--remote-debugging-port=0", f"--user-data-dir={self.profile}", "--window-size=1400,1000",
             "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.time() + 60
        while not port_file.exists() or not port_file.read_text().strip():
            if time.time() > deadline or self.process.poll() is not None:
                raise RuntimeError("chromium did not start its DevTools endpoint")
            time.sleep(0.1)
        self.port = int(port_file.read_text().split()[0])
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/json/new?about:blank", method="PUT")
        self.target = json.loads(urllib.request.urlopen(request, timeout=30).read())
        self.loop = asyncio.new_event_loop()
        self.messages = []
        self.console_errors = []
        self.loop.run_until_complete(self._connect())

    async def _connect(self):
        import aiohttp
        self.session = aiohttp.ClientSession()
        self.socket = await self.session.ws_connect(self.target["webSocketDebuggerUrl"], max_msg_size=0)
        self.next_id = 0
        for domain in ("Page", "Runtime", "Log"):
            await self._call(f"{domain}.enable")

    async def _call(self, method, **params):
        self.next_id += 1
        call = self.next_id
        await self.socket.send_json({"id": call, "method": method, "params": params})
        while True:
            message = json.loads((await self.socket.receive(timeout=60)).data)
            if message.get("id") == call:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self._event(message)

    def _event(self, message):
        method = message.get("method")
        self.messages.append(method)
        if method == "Runtime.consoleAPICalled" and message["params"]["type"] in ("error", "assert"):
            self.console_errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in message["params"]["args"]))
        elif method == "Runtime.exceptionThrown":
            self.console_errors.append(message["params"]["exceptionDetails"].get("exception", {}).get("description", "exception"))
        elif method == "Log.entryAdded" and message["params"]["entry"]["level"] == "error":
            self.console_errors.append(message["params"]["entry"]["text"] + " " + message["params"]["entry"].get("url", ""))

    async def _wait_for(self, event, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                raw = await self.socket.receive(timeout=max(0.1, deadline - time.time()))
            except asyncio.TimeoutError:
                break
            message = json.loads(raw.data)
            self._event(message)
            if message.get("method") == event:
                return True
        return False

    def goto(self, url, timeout=30):
        async def go():
            await self._call("Page.navigate", url=url)
            await self._wait_for("Page.loadEventFired", timeout)
        self.loop.run_until_complete(go())

    def evaluate(self, expression):
        result = self.loop.run_until_complete(self._call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True))
        return result.get("result", {}).get("value")

    def wait_until(self, expression, timeout=30):
        """Polls a script expression until it is truthy; answers its last value."""
        deadline = time.time() + timeout
        value = None
        while time.time() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            self.loop.run_until_complete(self._wait_for("__none__", 0.2))
        return value

    def html(self):
        return self.evaluate("document.documentElement.outerHTML")

    def screenshot(self, path):
        """A PNG of the page. Chromium refuses one while a layout has no width yet (seen once in a
        full run, just after a script changed the page): asked again after a moment."""
        for attempt in range(5):
            try:
                data = self.loop.run_until_complete(self._call("Page.captureScreenshot", format="png", captureBeyondViewport=True))["data"]
                break
            except RuntimeError as error:
                if "0 width" not in str(error) or attempt == 4:
                    raise
                self.loop.run_until_complete(self._wait_for("__none__", 0.2))
        Path(path).write_bytes(base64.b64decode(data))
        return path

    def close(self):
        try:
            self.loop.run_until_complete(self.socket.close())
            self.loop.run_until_complete(self.session.close())
        except Exception:
            pass
        self.loop.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.profile, ignore_errors=True)
