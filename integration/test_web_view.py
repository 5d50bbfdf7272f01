"""The lineage web view (/ui/) and GraphiQL in headless Chromium, with every host but the server
unresolvable: each page type loads without console errors, shows the commit, datasets and
parameters the demo repository has, draws one node per pipeline stage, and replays an inference.
Screenshots go to the test's output folder."""
import re
import subprocess

import pytest
import requests

from support.browser import Browser, chromium_path
from support.processes import Server
from support.secrets import secret
from support.tools import ENV, pedigree

LINEAGE = """query($id: ID!) { modelRevision(id: $id) { id commit { sha message } pipeline { name }
  datasets { path md5 size } parameters { file key value } artifact { md5 } } }"""


@pytest.fixture(scope="module")
def browser():
    if not chromium_path():
        pytest.fail("chromium is not installed (script/bootstrap installs Debian's chromium)")
    b = Browser()
    yield b
    b.close()


@pytest.fixture(scope="module")
def served(demo):
    server = Server(demo)
    yield server
    server.stop()


def text_of(browser, selector):
    return browser.evaluate(f"Array.from(document.querySelectorAll({selector!r})).map(e => e.textContent)")


def test_every_page_type_shows_the_repository(served, browser, demo, tmp_path):
    server = served
    loaded = server.data('mutation { loadModel(id: "tiny-llama") { md5 memory { device totalBytes } } }')["loadModel"]
    browser.goto(server.url + "/ui/")
    assert sorted(text_of(browser, "#models tbody tr td:first-child a")) == ["smollm2-135m", "tiny-llama"]
    # The loaded model's memory, by device, as loadedModels reports it.
    [row] = [r for r in browser.evaluate("Array.from(document.querySelectorAll('#loaded tbody tr')).map(r => Array.from(r.cells).map(c => c.textContent))")
             if loaded["md5"].startswith(r[0])]
    assert row[3] == "host" == loaded["memory"][0]["device"] and row[2] == "this process", row
    browser.screenshot(tmp_path / "models.png")

    browser.goto(server.url + "/ui/models/smollm2-135m")
    revisions = server.data('{ model(name: "smollm2-135m") { revisions { id } } }')["model"]["revisions"]
    links = browser.evaluate("Array.from(document.querySelectorAll('#revisions tbody a')).map(a => a.getAttribute('href'))")
    assert links == [f"/ui/revisions/{r['id']}" for r in revisions]
    assert "#prod" in " ".join(text_of(browser, "#revisions .stage-tag"))
    browser.screenshot(tmp_path / "model.png")

    # Revision pages, reached by canonical ids (permanent links): one model of one stage, one of two.
    for spec, least in (("smollm2-135m#prod", 1), ("tiny-llama", 2)):
        truth = server.data(LINEAGE, {"id": spec})["modelRevision"]
        git_sha = subprocess.run(["git", "-C", str(demo), "rev-parse", truth["id"].split("@")[1]], capture_output=True, text=True,
                                 env=ENV, check=True).stdout.strip()
        browser.goto(server.url + f"/ui/revisions/{truth['id']}")
        assert browser.evaluate("document.getElementById('commit').textContent") == git_sha == truth["commit"]["sha"]
        assert browser.evaluate("document.getElementById('artifact-md5').textContent") == truth["artifact"]["md5"]
        shown = browser.evaluate(
            "Array.from(document.querySelectorAll('#datasets tbody tr')).map(r => Array.from(r.cells).slice(0, 2).map(c => c.textContent))")
        assert sorted(map(tuple, shown)) == sorted((d["path"], d["md5"]) for d in truth["datasets"])
        parameters = browser.evaluate(
            "Array.from(document.querySelectorAll('#parameters tbody tr')).map(r => Array.from(r.cells).map(c => c.textContent))")
        assert sorted(map(tuple, parameters)) == sorted((p["file"], p["key"], p["value"]) for p in truth["parameters"])
        stages = browser.evaluate("Array.from(document.querySelectorAll('svg.pipeline g.node.stage')).map(g => g.dataset.name)")
        assert sorted(stages) == sorted(s["name"] for s in truth["pipeline"]) and len(stages) >= least
        assert browser.evaluate("document.querySelectorAll('svg.pipeline path.edge').length") >= len(stages)
        browser.screenshot(tmp_path / f"revision-{spec.split('#')[0].split('@')[0]}.png")

    # An inference, its page, and the replay button.
    answer = server.data("mutation($input: InferenceInput!) { infer(input: $input) { id result } }",
                         {"input": {"modelRevisionID": "tiny-llama", "prompt": "Web view", "sampling": {"maxTokens": 6, "temperature": 0.7, "seed": 5}}})["infer"]
    tiny = server.data('{ modelRevision(id: "tiny-llama") { id } }')["modelRevision"]["id"]
    browser.goto(server.url + f"/ui/revisions/{tiny}")
    assert answer["id"] in text_of(browser, "#inferences tbody a")
    browser.goto(server.url + f"/ui/inferences/{answer['id']}")
    assert browser.evaluate("document.getElementById('input').textContent") == "Web view"
    assert browser.evaluate("document.getElementById('output').textContent") == answer["result"]
    browser.screenshot(tmp_path / "inference.png")
    browser.evaluate("document.getElementById('replay').click()")
    verdict = browser.wait_until("document.getElementById('verdict') && document.getElementById('verdict').textContent")
    assert verdict.startswith("Identical"), verdict
    browser.screenshot(tmp_path / "replay.png")
    assert browser.console_errors == []

    # Errors are pages too.
    missing = requests.get(server.url + "/ui/revisions/nope@main", timeout=10)
    assert missing.status_code == 404 and "NOT_FOUND" in missing.text
    assert "Content-Security-Policy" in missing.headers


def test_graphiql_runs_a_lineage_query_offline(served, browser, tmp_path):
    server = served
    browser.goto(server.url + "/graphql")
    assert browser.wait_until("document.querySelector('.graphiql-container') !== null")
    # The default query shows a lineage; run it.
    assert browser.wait_until("document.querySelector('.execute-button, .graphiql-execute-button') !== null")
    browser.evaluate("document.querySelector('.execute-button, .graphiql-execute-button').click()")
    # The response editor (CodeMirror keeps its whole text; the DOM shows only what is visible).
    result = browser.wait_until(
        "(() => { const e = document.querySelector('.result-window .CodeMirror'); const t = e && e.CodeMirror ? e.CodeMirror.getValue() : '';"
        " return t.includes('models') ? t : ''; })()", timeout=30)
    assert '"smollm2-135m"' in result and '"datasets"' in result and '"sha"' in result, result[:500]
    browser.screenshot(tmp_path / "graphiql.png")
    assert browser.console_errors == []


def test_the_web_view_with_keys(demo, browser, tmp_path):
    server = Server(demo)
    try:
        alice = secret(pedigree("keys", "create", "--name", "alice", "--role", "infer", "--cache", server.cache).stdout.split()[-1])
        bob = secret(pedigree("keys", "create", "--name", "bob", "--role", "infer", "--cache", server.cache).stdout.split()[-1])

        def infer(key, prompt):
            body = requests.post(server.url + "/graphql", headers={"Authorization": f"Bearer {key}"}, timeout=120, json={
                "query": "mutation($input: InferenceInput!) { infer(input: $input) { id modelRevision { id } } }",
                "variables": {"input": {"modelRevisionID": "tiny-llama", "prompt": prompt, "sampling": {"maxTokens": 2}}}}).json()
            return body["data"]["infer"]
        mine, theirs = infer(alice, "alice's"), infer(bob, "bob's")
        # Without the cookie: to the sign-in page.
        first = requests.get(server.url + "/ui/", allow_redirects=False, timeout=10)
        assert first.status_code == 303 and first.headers["Location"] == "/ui/login"
        wrong = requests.post(server.url + "/ui/login", data={"key": "pdg_wrong"}, allow_redirects=False, timeout=10)
        assert wrong.status_code == 401
        signed = requests.post(server.url + "/ui/login", data={"key": alice}, allow_redirects=False, timeout=10)
        assert signed.status_code == 303 and "HttpOnly" in signed.headers["Set-Cookie"] and "SameSite=Strict" in signed.headers["Set-Cookie"]
        cookies = {"pedigree_key": alice}
        page = requests.get(server.url + f"/ui/revisions/{mine['modelRevision']['id']}", cookies=cookies, timeout=10).text
        assert mine["id"] in page and theirs["id"] not in page
        assert requests.get(server.url + f"/ui/inferences/{theirs['id']}", cookies=cookies, timeout=10).status_code == 404
        # The cookie is for the web view only: GraphQL does not take it (no CSRF through it).
        assert requests.post(server.url + "/graphql", json={"query": "{ models { name } }"}, cookies=cookies, timeout=10).status_code == 401
        # The browser signs in through the form.
        browser.goto(server.url + "/ui/login")
        browser.evaluate(f"document.querySelector('input[name=key]').value = {alice!r}; document.querySelector('form').submit()")
        assert browser.wait_until("document.getElementById('models') !== null")
        browser.screenshot(tmp_path / "signed-in.png")
    finally:
        server.stop()
