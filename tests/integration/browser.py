"""A real headless Chromium for the portal's end-to-end tests, driven over the
DevTools protocol (CDP): page loads with their status and headers, form posts,
mouse clicks and key presses, file uploads, downloads, screenshots, cookies.
It never switches certificate checking off wholesale (only the test server's
key is trusted) and never leaves a browser behind (its whole process group is
killed on close, and at interpreter exit for one that was not closed).

One websocket to the browser endpoint, the page attached to it as a flat
session (Target.attachToTarget with flatten), so that browser-wide commands
(downloads, cookies) and page commands share one connection. The websocket
lives on an asyncio loop in a background thread; the API is synchronous and
every wait has a deadline. Python's standard library and Debian's
python3-websockets (10.4, asyncio API) only.

    with Browser(ca_cert_pem_path=cert) as b:
        r = b.goto("https://127.0.0.1:%d/form" % port)
        b.fill("input[name=greeting]", "hello")
        r = b.submit("form")
        assert r.status == 200 and "hello" in b.text()

Environment:
  SEALGATE_CHROMIUM  the Chromium binary (default: /usr/lib/chromium/chromium,
                     then chromium on PATH)
"""
import asyncio
import atexit
import base64
import concurrent.futures
import dataclasses
import hashlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import NamedTuple


def _import_websockets():
    try:
        import websockets
        return websockets
    except ImportError:
        pass
    # Debian's python3-websockets lives in /usr/lib/python3/dist-packages, which
    # a python3 of another origin first on PATH (pyenv) does not search. It is
    # pure Python: import it from there without leaving the directory on
    # sys.path (its submodules load later through the package's own __path__).
    debian = "/usr/lib/python3/dist-packages"
    sys.path.append(debian)
    try:
        import websockets
        return websockets
    except ImportError:
        return None
    finally:
        sys.path.remove(debian)


websockets = _import_websockets()


class BrowserError(Exception):
    pass


class BrowserTimeout(BrowserError):
    pass


@dataclasses.dataclass
class Response:
    """One HTTP response the page received (a document, a subresource, a
    redirect on the way, or Chromium's own /favicon.ico request). headers:
    lower-case names, the headers as received (Set-Cookie included); a
    repeated header's values joined by "\\n", as Chromium reports them."""
    url: str
    status: int
    headers: dict
    mime_type: str
    resource_type: str  # Document, Stylesheet, Script, Image, Other, ...
    protocol: str  # "http/1.1", "h2", ...
    tls_version: str  # "TLS 1.3", ...; None over plain HTTP
    request_id: str
    awaiting_extra_info: bool = dataclasses.field(default=False, repr=False)


class _Deadline(NamedTuple):
    at: float  # time.monotonic()
    seconds: float  # for messages


class Download(NamedTuple):
    data: bytes
    filename: str  # the name the server suggested (Content-Disposition)


def find_chromium():
    """The Chromium binary, or None. Debian's /usr/bin/chromium is a shell
    wrapper that sources /etc/chromium.d and adds flags of its own (extensions,
    GPU rasterization): the binary behind it is run directly."""
    chosen = os.environ.get("SEALGATE_CHROMIUM")
    if chosen:
        return chosen
    if os.access("/usr/lib/chromium/chromium", os.X_OK):
        return "/usr/lib/chromium/chromium"
    return shutil.which("chromium") or shutil.which("chromium-browser")


def spki_pin(cert_pem_path):
    """base64(sha256(SubjectPublicKeyInfo DER)) of a PEM certificate: the form
    --ignore-certificate-errors-spki-list takes. The PUBLIC KEY block openssl
    prints is that SubjectPublicKeyInfo, base64-encoded."""
    out = subprocess.run(["openssl", "x509", "-in", cert_pem_path, "-noout", "-pubkey"],
                         capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise BrowserError("openssl cannot read %s: %s" % (cert_pem_path, out.stderr.strip()))
    body = "".join(line for line in out.stdout.splitlines() if line and not line.startswith("-----"))
    return base64.b64encode(hashlib.sha256(base64.b64decode(body)).digest()).decode("ascii")


_KEYS = {  # name: (windowsVirtualKeyCode, code, text)
    "Backspace": (8, "Backspace", ""), "Tab": (9, "Tab", ""), "Enter": (13, "Enter", "\r"),
    "Escape": (27, "Escape", ""), "Space": (32, "Space", " "), "End": (35, "End", ""), "Home": (36, "Home", ""),
    "ArrowLeft": (37, "ArrowLeft", ""), "ArrowUp": (38, "ArrowUp", ""), "ArrowRight": (39, "ArrowRight", ""),
    "ArrowDown": (40, "ArrowDown", ""), "Delete": (46, "Delete", ""),
}
_MODIFIERS = {"Alt": 1, "Control": 2, "Ctrl": 2, "Meta": 4, "Shift": 8}

_live = set()


@atexit.register
def _close_all():
    for browser in list(_live):
        browser.close()


class Browser:
    """A headless Chromium with one page. Use as a context manager, or call
    close(). The certificate of ca_cert_pem_path (the one the test server
    presents: its self-signed certificate, or a CA certificate it sends in its
    chain) and the keys of spki_pins are trusted whatever their names and
    issuers; every other certificate is checked as usual (Chromium's
    --ignore-certificate-errors-spki-list, which works with --headless=new in
    Chromium 156: no need for CDP's Security.setIgnoreCertificateErrors, which
    would trust every certificate). javascript=False turns the page's scripts
    off (set_javascript). timeout: the default for every wait, in seconds."""

    def __init__(self, ca_cert_pem_path=None, spki_pins=(), width=1280, height=900, javascript=True,
                 timeout=15, chromium=None):
        self.timeout = timeout
        self._closed = None  # why the connection is unusable, once it is
        self._closing = False
        self._events = []  # (method, params) of every event, in order
        self._responses = []
        self._extra_info = {}  # requestId -> [headers] not yet matched to a Response
        self._cond = threading.Condition()
        self._ids = itertools.count(1)
        self._pending = {}
        self._process = self._loop = self._thread = self._ws = self._reader = None
        self._session = None
        self._root = tempfile.mkdtemp(prefix="sealgate-browser-")
        self._profile = os.path.join(self._root, "profile")
        self.download_dir = os.path.join(self._root, "downloads")
        os.mkdir(self.download_dir)
        _live.add(self)
        try:
            if websockets is None:
                raise BrowserError("the Python package websockets is missing (Debian: python3-websockets)")
            pins = list(spki_pins) + ([spki_pin(ca_cert_pem_path)] if ca_cert_pem_path else [])
            self._launch(chromium or find_chromium(), pins)
            self._connect()
            self._attach_page(width, height, javascript)
        except BaseException:
            self.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------
    # Start and stop

    def _launch(self, binary, pins):
        if not binary:
            raise BrowserError("chromium not found (Debian: chromium; or set SEALGATE_CHROMIUM)")
        args = [binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                # No keyring over D-Bus (there is no bus here): saves a wait and log noise.
                "--password-store=basic",
                # Chromium honours the SPKI list only with an explicit --user-data-dir.
                "--user-data-dir=" + self._profile, "--remote-debugging-port=0"]
        if pins:
            args.append("--ignore-certificate-errors-spki-list=" + ",".join(pins))
        args.append("about:blank")
        self._log_path = os.path.join(self._root, "chromium.log")
        with open(self._log_path, "wb") as log:
            # Its own session and process group: close() kills the renderers,
            # the zygote and the GPU/network services with the browser.
            self._process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                             start_new_session=True)
        # Chromium writes "PORT\n/devtools/browser/UUID" once it listens; the
        # file may be seen half-written.
        port_file = os.path.join(self._profile, "DevToolsActivePort")
        deadline = self._deadline(None)
        while True:
            try:
                with open(port_file) as f:
                    m = re.fullmatch(r"(\d+)\n(/devtools/browser/[0-9a-f-]{36})\n?", f.read())
                if m:
                    self._ws_url = "ws://127.0.0.1:%s%s" % (m.group(1), m.group(2))
                    return
            except FileNotFoundError:
                pass
            if self._process.poll() is not None:
                raise BrowserError("chromium exited with status %s before listening:\n%s"
                                   % (self._process.returncode, self.log_tail()))
            if time.monotonic() > deadline.at:
                raise BrowserTimeout("chromium did not write %s within %ss:\n%s"
                                     % (port_file, self.timeout, self.log_tail()))
            time.sleep(0.02)

    def _connect(self):
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="cdp", daemon=True)
        self._thread.start()
        self._ws = self._run(self._open(), "connect to " + self._ws_url)

    async def _open(self):
        # max_size: a full-page screenshot comes as one message of megabytes.
        ws = await websockets.connect(self._ws_url, max_size=None, ping_interval=None, open_timeout=self.timeout)
        self._reader = asyncio.ensure_future(self._read(ws))
        return ws

    def _attach_page(self, width, height, javascript):
        # The about:blank page of the command line. Chromium 156 also lists
        # "browser_ui" targets (the omnibox popup): only type "page" will do.
        def page_target():
            targets = self._call("Target.getTargets", browser=True)["targetInfos"]
            return next((t["targetId"] for t in targets if t["type"] == "page"), None)
        deadline = self._deadline(None)
        target = page_target()
        while target is None and time.monotonic() < deadline.at:
            time.sleep(0.05)
            target = page_target()
        if target is None:
            target = self._call("Target.createTarget", {"url": "about:blank"}, browser=True)["targetId"]
        self._session = self._call("Target.attachToTarget", {"targetId": target, "flatten": True},
                                   browser=True)["sessionId"]
        self._call("Page.enable")
        self._call("Network.enable")
        # Every load goes to the server, so that every response's headers are
        # the server's, not a cache's.
        self._call("Network.setCacheDisabled", {"cacheDisabled": True})
        # allowAndName: each download is saved under its GUID, so that two
        # downloads with the same suggested name never collide.
        self._call("Browser.setDownloadBehavior",
                   {"behavior": "allowAndName", "downloadPath": self.download_dir, "eventsEnabled": True},
                   browser=True)
        self.set_viewport(width, height)
        if not javascript:
            self.set_javascript(False)

    def close(self):
        """Kills the browser's whole process group (SIGTERM, SIGKILL after a
        short grace) and removes its profile. Safe to call twice."""
        if self._closing:
            return
        self._closing = True
        _live.discard(self)
        if self._process is not None:
            for sig, grace in ((signal.SIGTERM, 2), (signal.SIGKILL, 5)):
                try:
                    os.killpg(self._process.pid, sig)
                except ProcessLookupError:
                    pass
                try:
                    self._process.wait(grace)
                except subprocess.TimeoutExpired:
                    pass
        if self._loop is not None:
            if self._ws is not None:
                try:
                    self._run(self._shutdown(), "close the DevTools connection", timeout=2)
                except BrowserError:
                    pass
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            if not self._thread.is_alive():
                self._loop.close()
        shutil.rmtree(self._root, ignore_errors=True)

    async def _shutdown(self):
        await self._ws.close()
        self._reader.cancel()

    @property
    def pid(self):
        """The browser's process id, also its process group's."""
        return self._process.pid

    @property
    def root(self):
        """The temporary directory of its profile, downloads and log."""
        return self._root

    def log_tail(self, lines=30):
        """The end of chromium's own output (stderr and stdout)."""
        try:
            with open(self._log_path, "rb") as f:
                return b"\n".join(f.read().splitlines()[-lines:]).decode("utf-8", "replace")
        except OSError:
            return ""

    # ------------------------------------------------------------------
    # The protocol: commands, events, waits

    def _run(self, coroutine, what, timeout=None):
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result(self.timeout if timeout is None else timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise BrowserTimeout("%s: no answer within %ss" % (what, self.timeout if timeout is None else timeout))
        except BrowserError:
            raise
        except Exception as e:
            raise BrowserError("%s: %s: %s" % (what, type(e).__name__, e)) from e

    def cdp(self, method, params=None, browser=False, timeout=None):
        """Sends one CDP command to the page (or, with browser=True, to the
        browser) and returns its result: for what the methods below lack."""
        return self._call(method, params, browser=browser, timeout=timeout)

    def _call(self, method, params=None, browser=False, timeout=None):
        if self._closing:
            raise BrowserError("%s: the browser is closed" % method)
        answer = self._run(self._command(method, params or {}, None if browser else self._session), method, timeout)
        if "error" in answer:
            error = answer["error"]
            raise BrowserError("%s: %s%s" % (method, error.get("message"),
                                             " (%s)" % error["data"] if error.get("data") else ""))
        return answer.get("result", {})

    async def _command(self, method, params, session):
        if self._closed:
            raise BrowserError(self._closed)
        message = {"id": next(self._ids), "method": method, "params": params}
        if session:
            message["sessionId"] = session
        answer = self._pending[message["id"]] = self._loop.create_future()
        try:
            await self._ws.send(json.dumps(message))
            return await answer
        finally:
            self._pending.pop(message["id"], None)

    async def _read(self, ws):
        try:
            async for raw in ws:
                message = json.loads(raw)
                if "id" in message:
                    answer = self._pending.get(message["id"])
                    if answer is not None and not answer.done():
                        answer.set_result(message)
                else:
                    self._record(message)
            reason = "chromium closed the DevTools connection"
        except asyncio.CancelledError:
            reason = "the DevTools connection was closed"
        except Exception as e:
            reason = "the DevTools connection failed: %s: %s" % (type(e).__name__, e)
        with self._cond:
            self._closed = reason
            self._cond.notify_all()
        for answer in self._pending.values():
            if not answer.done():
                answer.set_exception(BrowserError(reason))

    def _record(self, message):
        method, params = message["method"], message.get("params", {})
        with self._cond:
            self._events.append((method, params))
            if method == "Network.requestWillBeSent" and "redirectResponse" in params:
                self._add_response(params["requestId"], params.get("type", ""), params["redirectResponse"],
                                   params.get("redirectHasExtraInfo", _from_network(params["redirectResponse"])))
            elif method == "Network.responseReceived":
                response = params["response"]
                self._add_response(params["requestId"], params.get("type", ""), response,
                                   response.get("hasExtraInfo", _from_network(response)))
            elif method == "Network.responseReceivedExtraInfo":
                self._extra_info.setdefault(params["requestId"], []).append(_lower(params["headers"]))
                self._match_extra_info(params["requestId"])
            elif method == "Target.detachedFromTarget" and params.get("sessionId") == self._session:
                self._closed = "the page went away (%s)" % params
            self._cond.notify_all()

    def _add_response(self, request_id, resource_type, r, has_extra_info):
        if not r["url"].startswith(("http:", "https:")):
            return  # data: URLs (Chromium's error page has some), about:, ...
        self._responses.append(Response(
            url=r["url"], status=r["status"], headers=_lower(r.get("headers", {})), mime_type=r.get("mimeType", ""),
            resource_type=resource_type, protocol=r.get("protocol", ""),
            tls_version=r.get("securityDetails", {}).get("protocol"), request_id=request_id,
            awaiting_extra_info=has_extra_info))
        self._match_extra_info(request_id)

    def _match_extra_info(self, request_id):
        # Network.Response.headers leaves out what the renderer may not see
        # (Set-Cookie); responseReceivedExtraInfo has the headers as received.
        # It comes once per hop of a redirect chain, in order, before or after
        # the hop's response event.
        waiting = [r for r in self._responses if r.request_id == request_id and r.awaiting_extra_info]
        extra = self._extra_info.get(request_id, [])
        while waiting and extra:
            response = waiting.pop(0)
            response.headers.update(extra.pop(0))
            response.awaiting_extra_info = False

    def _deadline(self, timeout):
        seconds = self.timeout if timeout is None else timeout
        return _Deadline(time.monotonic() + seconds, seconds)

    def _wait_until(self, found, what, deadline):
        """found() (called with the event lock held) until it returns
        something other than None; BrowserTimeout at the deadline."""
        with self._cond:
            while True:
                result = found()
                if result is not None:
                    return result
                if self._closed:
                    raise BrowserError("%s: %s" % (what, self._closed))
                left = deadline.at - time.monotonic()
                if left <= 0:
                    raise BrowserTimeout("%s: gave up after %ss" % (what, deadline.seconds))
                self._cond.wait(left)

    def _mark(self):
        with self._cond:
            return len(self._events)

    def _find_event(self, method, since, matches=lambda params: True):
        for i in range(since, len(self._events)):
            if self._events[i][0] == method and matches(self._events[i][1]):
                return i, self._events[i][1]
        return None

    def _wait_loaded(self, since, what, deadline, loader_id=None):
        """After event index since: the main frame's navigation (the one of
        loader_id, if given) and its load event. Returns the main document's
        Response, or None for a page that did not come over HTTP."""
        def navigated(params):
            frame = params["frame"]
            return "parentId" not in frame and (loader_id is None or frame["loaderId"] == loader_id)
        i, params = self._wait_until(lambda: self._find_event("Page.frameNavigated", since, navigated),
                                     what + ": no navigation", deadline)
        frame = params["frame"]
        # Chromium's error page (chrome-error://) names the URL it stands for.
        url = frame.get("unreachableUrl", frame["url"])
        self._wait_until(lambda: self._find_event("Page.loadEventFired", i),
                         "%s: %s did not finish loading" % (what, url), deadline)
        if not url.startswith(("http:", "https:")):
            return None

        def document(wait_for_headers=True):
            for r in reversed(self._responses):
                if r.request_id == frame["loaderId"] and r.resource_type == "Document":
                    return None if r.awaiting_extra_info and wait_for_headers else r
            return None
        with self._cond:
            # The document's response comes before its navigation commits;
            # an error page without one is a failure to connect or to trust.
            if "unreachableUrl" in frame and document(wait_for_headers=False) is None:
                raise BrowserError("%s: %s could not be loaded (Chromium shows its error page)" % (what, url))
        return self._wait_until(document, "%s: no response with its raw headers for %s" % (what, url), deadline)

    # ------------------------------------------------------------------
    # Pages

    def goto(self, url, timeout=None):
        """Loads url and waits for its load event. Returns the main document's
        Response (its status, even 404 or 500), or None for a same-document
        navigation (a fragment). BrowserError when no response came at all
        (refused connection, untrusted certificate)."""
        deadline = self._deadline(timeout)
        mark = self._mark()
        try:
            result = self._call("Page.navigate", {"url": url}, timeout=timeout)
        except BrowserError as e:
            raise type(e)("goto %s: %s" % (url, e)) from e
        error = result.get("errorText")
        # An HTTP error status with an empty body is reported as a failure,
        # but it is a response the test wants to see.
        if error and error != "net::ERR_HTTP_RESPONSE_CODE_FAILURE":
            hint = " (a download? see download())" if error == "net::ERR_ABORTED" else ""
            raise BrowserError("goto %s: %s%s" % (url, error, hint))
        if "loaderId" not in result:
            return None
        return self._wait_loaded(mark, "goto " + url, deadline, result["loaderId"])

    @property
    def responses(self):
        """Every response seen since the start (or clear_responses()), in order."""
        with self._cond:
            return list(self._responses)

    def clear_responses(self):
        with self._cond:
            self._responses.clear()

    @property
    def url(self):
        history = self._call("Page.getNavigationHistory")
        return history["entries"][history["currentIndex"]]["url"]

    def evaluate(self, expression):
        """The value of a JavaScript expression in the page (JSON-like values;
        promises awaited). Works with the page's scripts disabled too."""
        result = self._call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                  "awaitPromise": True})
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise BrowserError("evaluate %r at %s: %s" % (
                expression, self.url, details.get("exception", {}).get("description") or details.get("text")))
        return result["result"].get("value")

    def text(self):
        return self.evaluate("document.body ? document.body.innerText : ''")

    def html(self):
        return self.evaluate("document.documentElement.outerHTML")

    def title(self):
        return self.evaluate("document.title")

    def focused(self):
        """The focused element as {"tag", "name", "id", "type"}, or None when
        nothing is (the body has the focus)."""
        return self.evaluate("""(() => {
            const e = document.activeElement;
            if (!e || e === document.body) return null;
            return {tag: e.tagName.toLowerCase(), name: e.getAttribute('name'), id: e.id || null,
                    type: e.getAttribute('type')};
        })()""")

    def scroll_width(self):
        """document.documentElement.scrollWidth: more than the viewport's width
        means the page overflows sideways."""
        return self.evaluate("document.documentElement.scrollWidth")

    def set_javascript(self, enabled):
        """Turns the page's own scripts on or off (for this and later pages).
        The driver keeps working: it acts through the DOM and Input domains,
        and Runtime.evaluate is not a page script."""
        self._call("Emulation.setScriptExecutionDisabled", {"value": not enabled})

    def set_viewport(self, width, height, mobile=False):
        """mobile=True also honours <meta name=viewport> (without one, a phone
        lays the page out 980 px wide)."""
        self._call("Emulation.setDeviceMetricsOverride", {"width": width, "height": height,
                                                          "deviceScaleFactor": 1, "mobile": mobile})

    def screenshot(self, path, full_page=True):
        """Writes a PNG of the viewport, or of the whole page; returns path."""
        params = {"format": "png"}
        if full_page:
            size = self._call("Page.getLayoutMetrics")["cssContentSize"]
            params.update(captureBeyondViewport=True,
                          clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1})
        data = base64.b64decode(self._call("Page.captureScreenshot", params)["data"])
        with open(path, "wb") as f:
            f.write(data)
        return path

    def cookies(self):
        """Every cookie the browser holds, as CDP's Network.Cookie objects
        (name, value, domain, path, secure, httpOnly, sameSite, expires, ...)."""
        return self._call("Storage.getCookies", browser=True)["cookies"]

    # ------------------------------------------------------------------
    # Acting as a user: mouse, keyboard, files

    def _node(self, selector, within=None):
        if within is None:
            within = self._call("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
        node = self._call("DOM.querySelector", {"nodeId": within, "selector": selector})["nodeId"]
        if not node:
            raise BrowserError("no element matches %r at %s" % (selector, self.url))
        return node

    def _click_node(self, node, selector):
        # A real left click at the middle of the element's first box, after
        # scrolling it into view: what covers it gets the click, as for a user.
        self._call("DOM.scrollIntoViewIfNeeded", {"nodeId": node})
        quads = self._call("DOM.getContentQuads", {"nodeId": node})["quads"]
        if not quads:
            raise BrowserError("%r at %s is not rendered (no box to click)" % (selector, self.url))
        q = quads[0]
        x, y = sum(q[0::2]) / 4, sum(q[1::2]) / 4
        self._call("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y})
        for kind in ("mousePressed", "mouseReleased"):
            self._call("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1})

    def click(self, selector, wait_navigation=True, timeout=None):
        """Clicks the element. With wait_navigation, waits for the page it
        leads to and returns that page's Response (as goto)."""
        deadline = self._deadline(timeout)
        what = "click %r at %s" % (selector, self.url)
        node = self._node(selector)
        mark = self._mark()
        self._click_node(node, selector)
        if wait_navigation:
            return self._wait_loaded(mark, what, deadline)
        return None

    def submit(self, form_selector, timeout=None):
        """Submits the form as a user would: clicks its first submit button, or
        presses Enter in its first field. Returns the resulting page's Response."""
        deadline = self._deadline(timeout)
        form = self._node(form_selector)
        what = "submit %r at %s" % (form_selector, self.url)
        button = self._call("DOM.querySelector", {
            "nodeId": form, "selector": "button[type=submit], input[type=submit], button:not([type])"})["nodeId"]
        mark = self._mark()
        if button:
            self._click_node(button, form_selector + " submit button")
        else:
            field = self._node("input:not([type=hidden]), textarea, select", within=form)
            self._call("DOM.focus", {"nodeId": field})
            self.press("Enter")
        return self._wait_loaded(mark, what, deadline)

    def fill(self, selector, value):
        """Focuses a text field, selects what it holds and types value over it
        (Input.insertText: the page sees real input events)."""
        self._call("DOM.focus", {"nodeId": self._node(selector)})
        self.press("Control+a", commands=["selectAll"])
        self.press("Backspace")
        if value:
            self.type_text(value)

    def type_text(self, text):
        """Types text into the focused element."""
        self._call("Input.insertText", {"text": text})

    def press(self, *keys, commands=None, wait_navigation=False, timeout=None):
        """Presses keys, one after the other: names ("Tab", "Enter", "Escape",
        "Backspace", "ArrowDown", ...) or single characters, each with optional
        modifiers ("Shift+Tab", "Control+a"). commands: editing commands the
        key triggers (CDP's "selectAll", ...). With wait_navigation, waits for
        the page the keys lead to and returns its Response (as goto)."""
        deadline = self._deadline(timeout)
        what = "press %s at %s" % (" ".join(keys), self.url) if wait_navigation else None
        mark = self._mark()
        for key in keys:
            *modifier_names, name = key.split("+") if key != "+" else ["+"]
            modifiers = 0
            for m in modifier_names:
                if m not in _MODIFIERS:
                    raise BrowserError("unknown modifier %r in %r (valid: %s)" % (m, key, ", ".join(_MODIFIERS)))
                modifiers |= _MODIFIERS[m]
            if name in _KEYS:
                key_code, code, text = _KEYS[name]
            elif len(name) == 1:
                key_code, code, text = ord(name.upper()), "", name
            else:
                raise BrowserError("unknown key %r (valid: %s, or one character)" % (name, ", ".join(_KEYS)))
            if modifiers & ~_MODIFIERS["Shift"]:
                text = ""  # Control+a types nothing
            down = {"type": "keyDown" if text else "rawKeyDown", "key": name, "code": code,
                    "windowsVirtualKeyCode": key_code, "modifiers": modifiers}
            if text:
                down.update(text=text, unmodifiedText=text)
            if commands:
                down["commands"] = commands
            self._call("Input.dispatchKeyEvent", down)
            self._call("Input.dispatchKeyEvent", {"type": "keyUp", "key": name, "code": code,
                                                  "windowsVirtualKeyCode": key_code, "modifiers": modifiers})
        if wait_navigation:
            return self._wait_loaded(mark, what, deadline)
        return None

    def set_file_input(self, selector, paths):
        """Chooses files for an <input type=file>, as the file picker would."""
        paths = [os.path.abspath(p) for p in paths]
        for p in paths:
            if not os.path.isfile(p):
                raise BrowserError("set_file_input %r: no file %s" % (selector, p))
        self._call("DOM.setFileInputFiles", {"nodeId": self._node(selector), "files": paths})

    def download(self, selector, timeout=None):
        """Clicks a link whose answer is a download and waits until the file is
        complete. Returns Download(data, filename); the file is removed."""
        deadline = self._deadline(timeout)
        node = self._node(selector)
        what = "download %r at %s" % (selector, self.url)
        mark = self._mark()
        self._click_node(node, selector)
        _, begun = self._wait_until(lambda: self._find_event("Browser.downloadWillBegin", mark),
                                    what + ": no download began", deadline)
        guid = begun["guid"]
        _, done = self._wait_until(lambda: self._find_event(
            "Browser.downloadProgress", mark,
            lambda p: p["guid"] == guid and p["state"] in ("completed", "canceled")),
            "%s: %s did not complete" % (what, begun["url"]), deadline)
        if done["state"] != "completed":
            raise BrowserError("%s: %s was canceled" % (what, begun["url"]))
        path = done.get("filePath") or os.path.join(self.download_dir, guid)
        with open(path, "rb") as f:
            data = f.read()
        os.remove(path)
        return Download(data, begun["suggestedFilename"])


def _from_network(response):
    # Chromium 156 no longer sends hasExtraInfo: a response that came over
    # the network has its raw headers in a responseReceivedExtraInfo.
    return not any(response.get(k) for k in ("fromDiskCache", "fromPrefetchCache", "fromServiceWorker",
                                             "fromEarlyHints"))


def _lower(headers):
    return {name.lower(): value for name, value in headers.items()}
