"""Self-test of browser.py, the headless Chromium driver of the portal's
end-to-end tests, against a small HTTPS server of its own on 127.0.0.1 (a
throwaway self-signed certificate): page loads with status and headers, a
form post, an upload, a download, cookie flags, a screenshot, a phone-wide
viewport, pages with scripts disabled, and an untrusted certificate refused.
Everything it starts (the server, each Chromium) it stops.
"""
import email.parser
import email.policy
import hashlib
import html
import http.server
import os
import shutil
import socket
import ssl
import tempfile
import threading
import unittest

import browser
from harness import make_cert

PAYLOAD = os.urandom(256 * 1024)  # the download's bytes
HOST = "127.0.0.1"

FORM = b"""<!doctype html>
<html><head><title>Form</title><meta name=viewport content="width=device-width, initial-scale=1"></head>
<body>
<form method=post action=/echo enctype=multipart/form-data>
  <label>Greeting <input name=greeting value="to be replaced"></label>
  <label>Note <input name=note></label>
  <label>File <input type=file name=upload></label>
  <button type=submit>Send</button>
</form>
<script>document.body.dataset.js = "ran"</script>
</body></html>"""

PAGES = {  # path: (status, headers, body)
    "/": (200, {"Content-Type": "text/html; charset=utf-8", "X-Selftest": "index",
                "Content-Security-Policy": "default-src 'self'"},
          b'<!doctype html><html><head><title>Selftest</title><link rel=stylesheet href="/style.css">'
          b'</head><body><p>Hello from the self-test</p></body></html>'),
    "/style.css": (200, {"Content-Type": "text/css", "X-Selftest": "style"}, b"p { color: #123; }"),
    "/form": (200, {"Content-Type": "text/html; charset=utf-8"}, FORM),
    "/cookie": (200, {"Content-Type": "text/html; charset=utf-8",
                      "Set-Cookie": "s=1; Secure; HttpOnly; SameSite=Strict; Path=/"},
                b"<!doctype html><title>Cookie</title><p>cookie set"),
    "/files": (200, {"Content-Type": "text/html; charset=utf-8"},
               b'<!doctype html><title>Files</title><p><a id=get href="/download">Download</a>'),
    "/download": (200, {"Content-Type": "application/octet-stream",
                        "Content-Disposition": 'attachment; filename="data.bin"'}, PAYLOAD),
    "/narrow": (200, {"Content-Type": "text/html; charset=utf-8"},
                b'<!doctype html><title>Narrow</title><meta name=viewport content="width=device-width">'
                b'<p style="max-width: 40em">Fits any width.'),
    "/wide": (200, {"Content-Type": "text/html; charset=utf-8"},
              b'<!doctype html><title>Wide</title><meta name=viewport content="width=device-width">'
              b'<div style="width: 800px">Too wide for a phone.</div>'),
    "/missing": (404, {"Content-Type": "text/html"}, b""),
    "/redirect": (303, {"Location": "/"}, b""),
}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, headers, body):
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.answer(*PAGES.get(self.path, (404, {"Content-Type": "text/plain"}, b"no such page")))

    def do_POST(self):
        # The echo of a multipart form: each field's value; for a file, its
        # name, size and SHA-256.
        body = self.rfile.read(int(self.headers["Content-Length"]))
        head = ("Content-Type: %s\r\n\r\n" % self.headers["Content-Type"]).encode("ascii")
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
        lines = []
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            data = part.get_payload(decode=True)
            if part.get_filename() is not None:
                lines.append("%s=%s %d bytes sha256:%s" % (name, part.get_filename(), len(data),
                                                           hashlib.sha256(data).hexdigest()))
            else:
                lines.append("%s=%s" % (name, data.decode("utf-8")))
        page = "<!doctype html><title>Echo</title><pre>%s</pre>" % html.escape("\n".join(lines))
        self.answer(200, {"Content-Type": "text/html; charset=utf-8"}, page.encode("utf-8"))


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, cert, key):
        super().__init__((HOST, 0), Handler)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)

    def get_request(self):
        # The TLS handshake happens in the request's thread, not in the
        # accepting one, so that one stalled client cannot stop the server.
        sock, address = self.socket.accept()
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address

    def handle_error(self, request, client_address):
        pass  # a browser that refuses the certificate, or drops a connection


CERT = BASE = UNTRUSTED_BASE = BROWSER = None


def start_server(directory):
    """A server with a fresh certificate of its own; returns (its URL, the certificate's path)."""
    os.mkdir(directory)
    cert, key = make_cert(directory)
    server = Server(cert, key)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)  # a quick shutdown
    thread.start()
    unittest.addModuleCleanup(thread.join, 5)
    unittest.addModuleCleanup(server.server_close)
    unittest.addModuleCleanup(server.shutdown)
    return "https://%s:%d" % (HOST, server.server_address[1]), cert


def setUpModule():
    global CERT, BASE, UNTRUSTED_BASE, BROWSER
    if browser.find_chromium() is None:
        raise unittest.SkipTest("chromium is not installed (Debian package chromium; scripts/setup.sh)")
    if browser.websockets is None:
        raise unittest.SkipTest("the websockets package is missing (Debian package python3-websockets)")
    directory = tempfile.mkdtemp(prefix="sealgate-browser-selftest-")
    unittest.addModuleCleanup(shutil.rmtree, directory, True)
    BASE, CERT = start_server(os.path.join(directory, "trusted"))
    UNTRUSTED_BASE, _ = start_server(os.path.join(directory, "untrusted"))
    # One browser for all the tests but Lifecycle's: a launch costs 1.5 s.
    BROWSER = browser.Browser(ca_cert_pem_path=CERT)
    unittest.addModuleCleanup(BROWSER.close)


def live_members(group):
    """The processes of a process group that are not zombies. (Where PID 1
    does not reap orphans, as in some containers, killed children of a killed
    browser stay as zombies: dead, holding nothing but their process ids.)"""
    members = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            members.append(int(pid))
    return members


class Pages(unittest.TestCase):
    def setUp(self):
        self.b = BROWSER
        self.b.clear_responses()

    def test_goto_returns_status_and_headers_of_the_page_and_its_subresources(self):
        r = self.b.goto(BASE + "/")
        self.assertEqual((r.status, r.url, r.resource_type), (200, BASE + "/", "Document"))
        self.assertEqual(r.headers["x-selftest"], "index")
        self.assertEqual(r.headers["content-security-policy"], "default-src 'self'")
        self.assertEqual(self.b.title(), "Selftest")
        self.assertIn("Hello from the self-test", self.b.text())
        self.assertIn("<p>Hello from the self-test</p>", self.b.html())
        style = [x for x in self.b.responses if x.url == BASE + "/style.css"]
        self.assertEqual(len(style), 1, self.b.responses)
        self.assertEqual((style[0].status, style[0].resource_type, style[0].headers["x-selftest"]),
                         (200, "Stylesheet", "style"))

    def test_goto_reports_an_error_status_and_each_hop_of_a_redirect(self):
        self.assertEqual(self.b.goto(BASE + "/missing").status, 404)
        r = self.b.goto(BASE + "/redirect")
        self.assertEqual((r.status, r.url), (200, BASE + "/"))
        hops = [(x.url, x.status, x.headers.get("location")) for x in self.b.responses if x.resource_type == "Document"]
        self.assertEqual(hops[-2:], [(BASE + "/redirect", 303, "/"), (BASE + "/", 200, None)])

    def test_fill_replaces_the_value_and_submit_posts_the_form(self):
        self.b.goto(BASE + "/form")
        self.assertEqual(self.b.evaluate("document.body.dataset.js"), "ran")
        self.b.fill("input[name=greeting]", "hello <world>")
        self.b.fill("input[name=note]", "grüße")
        r = self.b.submit("form")
        self.assertEqual((r.status, r.url), (200, BASE + "/echo"))
        self.assertEqual(self.b.text().splitlines()[:2], ["greeting=hello <world>", "note=grüße"])

    def test_a_file_chosen_for_a_file_input_is_uploaded_intact(self):
        content = os.urandom(50_000)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "report.bin")
            with open(path, "wb") as f:
                f.write(content)
            self.b.goto(BASE + "/form")
            self.b.set_file_input("input[type=file]", [path])
            r = self.b.click("button[type=submit]")
        self.assertEqual(r.status, 200)
        self.assertIn("upload=report.bin %d bytes sha256:%s" % (len(content), hashlib.sha256(content).hexdigest()),
                      self.b.text())

    def test_tab_moves_the_focus_through_the_fields(self):
        self.b.goto(BASE + "/form")
        self.assertIsNone(self.b.focused())
        self.b.press("Tab")
        self.assertEqual(self.b.focused(), {"tag": "input", "name": "greeting", "id": None, "type": None})
        self.b.press("Tab")
        self.assertEqual(self.b.focused()["name"], "note")
        self.b.type_text("typed")
        self.b.press("Shift+Tab", "Tab", "Tab", "Tab")
        self.assertEqual((self.b.focused()["tag"], self.b.focused()["type"]), ("button", "submit"))
        r = self.b.press("Enter", wait_navigation=True)
        self.assertEqual((r.status, r.url), (200, BASE + "/echo"))
        self.assertEqual(self.b.text().splitlines()[:2], ["greeting=to be replaced", "note=typed"])

    def test_a_download_is_byte_identical(self):
        self.b.goto(BASE + "/files")
        download = self.b.download("#get")
        self.assertEqual(download.filename, "data.bin")
        self.assertEqual(download.data, PAYLOAD)
        self.assertEqual(os.listdir(self.b.download_dir), [])

    def test_cookie_flags(self):
        r = self.b.goto(BASE + "/cookie")
        self.assertEqual(r.headers["set-cookie"], "s=1; Secure; HttpOnly; SameSite=Strict; Path=/")
        cookie = next(c for c in self.b.cookies() if c["name"] == "s")
        self.assertEqual((cookie["value"], cookie["domain"], cookie["secure"], cookie["httpOnly"], cookie["sameSite"]),
                         ("1", HOST, True, True, "Strict"))

    def test_screenshot_is_a_png_of_the_whole_page(self):
        self.b.goto(BASE + "/")
        with tempfile.TemporaryDirectory() as d:
            path = self.b.screenshot(os.path.join(d, "page.png"))
            with open(path, "rb") as f:
                png = f.read()
        self.assertEqual(png[:8], b"\x89PNG\r\n\x1a\n")
        self.assertEqual(png[12:16], b"IHDR")
        self.assertEqual(int.from_bytes(png[16:20], "big"), 1280)  # width
        self.assertGreater(len(png), 1000)

    def test_a_phone_wide_viewport_shows_which_page_overflows(self):
        self.addCleanup(self.b.set_viewport, 1280, 900)
        self.b.set_viewport(375, 667, mobile=True)
        self.b.goto(BASE + "/narrow")
        self.assertEqual(self.b.scroll_width(), 375)
        self.b.goto(BASE + "/wide")
        self.assertGreaterEqual(self.b.scroll_width(), 800)


class WithoutJavaScript(unittest.TestCase):
    def setUp(self):
        self.b = BROWSER
        self.b.set_javascript(False)
        self.addCleanup(self.b.set_javascript, True)

    def test_the_form_works_with_the_pages_scripts_disabled(self):
        self.b.goto(BASE + "/form")
        # The page's script did not run; the driver's evaluate still works.
        self.assertIsNone(self.b.evaluate("document.body.dataset.js"))
        self.b.fill("input[name=greeting]", "no script")
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "a.txt")
            with open(path, "wb") as f:
                f.write(b"plain\n")
            self.b.set_file_input("input[name=upload]", [path])
            r = self.b.submit("form")
        self.assertEqual(r.status, 200)
        self.assertIn("greeting=no script", self.b.text())
        self.assertIn("upload=a.txt 6 bytes", self.b.text())

    def test_links_and_downloads_work_with_the_pages_scripts_disabled(self):
        self.b.goto(BASE + "/files")
        self.assertEqual(self.b.download("#get").data, PAYLOAD)
        self.b.goto(BASE + "/")
        self.b.evaluate("document.body.insertAdjacentHTML('beforeend', '<a id=f href=/form>form</a>')")
        r = self.b.click("#f")
        self.assertEqual((r.status, r.url, self.b.title()), (200, BASE + "/form", "Form"))


class Trust(unittest.TestCase):
    def test_only_the_pinned_certificate_is_trusted(self):
        self.assertEqual(BROWSER.goto(BASE + "/").tls_version, "TLS 1.3")
        # Another self-signed certificate for the same address: refused.
        with self.assertRaisesRegex(browser.BrowserError, "goto https://.*: net::ERR_CERT_AUTHORITY_INVALID"):
            BROWSER.goto(UNTRUSTED_BASE + "/")


class Lifecycle(unittest.TestCase):
    def test_a_browser_started_without_javascript_and_closed_leaves_nothing_behind(self):
        b = browser.Browser(ca_cert_pem_path=CERT, javascript=False)
        self.addCleanup(b.close)
        self.assertEqual(b.goto(BASE + "/form").status, 200)
        self.assertIsNone(b.evaluate("document.body.dataset.js"))
        group, root = b.pid, b.root
        self.assertGreater(len(live_members(group)), 1)  # the browser, its renderer, zygote, services
        b.close()
        self.assertEqual(live_members(group), [])
        self.assertFalse(os.path.exists(root))
        with self.assertRaisesRegex(browser.BrowserError, "Page.navigate: the browser is closed"):
            b.goto(BASE + "/")


if __name__ == "__main__":
    unittest.main()
