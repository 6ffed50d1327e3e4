"""plugins/module_utils/_common/xmlutil.py: a hostile document is refused with a sentence before the
parser sees it, and the parser itself resolves no entity, loads no DTD and opens no network
connection (the second line of defence, also behind canonical()).

Each case runs in a child process, under the tests' Python and under the hypervisor's
(/usr/bin/python3 with the distribution's lxml), because the modules run on the latter and the
two libxml2 differ: the venv's (2.14) cannot fetch http at all, the distribution's (2.9) can,
so only there does a parser without no_network/load_dtd=False really connect. The child runs
under an address-space limit: an entity expansion that blows up memory fails the test instead
of the machine."""
import json
import os
import socket
import subprocess
import sys
import threading

import pytest
import unit_paths

REPO = unit_paths.REPO
BUILD = os.path.join(REPO, ".build")
HYPERVISOR_PYTHON = "/usr/bin/python3"
INTERPRETERS = [sys.executable, HYPERVISOR_PYTHON]
WHAT = "test document"
REFUSED = "The %s must not contain a DOCTYPE declaration." % WHAT
SECRET = "hn-secret-0a1b2c"
MEMORY_LIMIT = 1024 ** 3

# Parses stdin with xmlutil.parse ("parse") or with xmlutil's parser alone ("parser") and
# prints {"xml": serialized result} or {"error": sentence}.
CHILD = r'''
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (%d, %d))
sys.path.insert(0, sys.argv[1])
from lxml import etree
from ansible_collections.gridvirt.kvm.plugins.module_utils._common import xmlutil
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError
text = sys.stdin.read()
try:
    if sys.argv[2] == "parse":
        root = xmlutil.parse(text, sys.argv[3])
    else:
        root = etree.fromstring(text.encode("utf-8"), xmlutil._parser())
    print(json.dumps({"xml": etree.tostring(root, encoding="unicode")}))
except VmError as exc:
    print(json.dumps({"error": exc.msg}))
except etree.XMLSyntaxError as exc:
    print(json.dumps({"error": str(exc)}))
''' % (MEMORY_LIMIT, MEMORY_LIMIT)


def run_child(interpreter, how, text):
    proc = subprocess.run([interpreter, "-c", CHILD, BUILD, how, WHAT], input=text,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture()
def secret_files(tmp_path):
    """A file whose content must never reach a parsed document, and a DTD that defines an
    entity holding it."""
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    dtd = tmp_path / "evil.dtd"
    dtd.write_text('<!ENTITY x "%s">' % SECRET)
    return secret.as_uri(), dtd.as_uri()


@pytest.fixture()
def listener():
    """A TCP port on 127.0.0.1 that records every connection to it. It closes each one at
    once, so a parser that does connect gets an answer instead of waiting for one; the record
    is made before the close, hence before that parser can return."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    connections = []

    def serve():
        while True:
            try:
                conn, peer = sock.accept()
            except OSError:
                return  # the listening socket was shut down
            connections.append(peer)
            conn.close()

    thread = threading.Thread(target=serve)
    thread.start()
    yield "http://127.0.0.1:%d" % sock.getsockname()[1], connections
    sock.shutdown(socket.SHUT_RDWR)
    sock.close()
    thread.join()


def file_entity_documents(secret, dtd):
    return {
        "entity in text": "<!DOCTYPE d [<!ENTITY x SYSTEM '%s'>]><d>&x;</d>" % secret,
        "entity in an attribute": "<!DOCTYPE d [<!ENTITY x SYSTEM '%s'>]><d a='&x;'/>" % secret,
        "parameter entity": "<!DOCTYPE d [<!ENTITY %% p SYSTEM '%s'> %%p;]><d/>" % dtd,
        "external DTD": "<!DOCTYPE d SYSTEM '%s'><d>&x;</d>" % dtd,
        "internal entity": "<!DOCTYPE d [<!ENTITY x '%s'>]><d>&x;</d>" % SECRET,
    }


def network_documents(url):
    return {
        "external DTD": "<!DOCTYPE d SYSTEM '%s/d.dtd'><d/>" % url,
        "public DTD": "<!DOCTYPE d PUBLIC '-//X//Y//EN' '%s/p.dtd'><d/>" % url,
        "general entity": "<!DOCTYPE d [<!ENTITY x SYSTEM '%s/e'>]><d>&x;</d>" % url,
        "parameter entity": "<!DOCTYPE d [<!ENTITY %% p SYSTEM '%s/p'> %%p;]><d/>" % url,
    }


def billion_laughs(attribute=False):
    entities = "<!ENTITY a0 'lol'>" + "".join(
        "<!ENTITY a%d '%s'>" % (i, ("&a%d;" % (i - 1)) * 10) for i in range(1, 11))
    body = "<d x='&a10;'/>" if attribute else "<d>&a10;</d>"
    return "<!DOCTYPE d [%s]>%s" % (entities, body)


DEEP = "<d>" * 10000 + "</d>" * 10000
PROLOGS = ["", "  \n", "\ufeff", "<?xml version='1.0' encoding='UTF-8'?>\n",
           "<!-- a comment --><?pi data?>\n", "<?xml version='1.0'?><!-- <d/> -->"]


@pytest.mark.parametrize("interpreter", INTERPRETERS)
@pytest.mark.parametrize("case", ["entity in text", "entity in an attribute", "parameter entity",
                                  "external DTD", "internal entity"])
def test_entities_naming_a_file_are_refused(interpreter, case, secret_files):
    result = run_child(interpreter, "parse", file_entity_documents(*secret_files)[case])
    assert result == {"error": REFUSED}


@pytest.mark.parametrize("interpreter", INTERPRETERS)
@pytest.mark.parametrize("case", ["entity in text", "entity in an attribute", "parameter entity",
                                  "external DTD"])
def test_the_parser_itself_reads_no_file(interpreter, case, secret_files):
    result = run_child(interpreter, "parser", file_entity_documents(*secret_files)[case])
    assert SECRET not in json.dumps(result)


@pytest.mark.parametrize("interpreter", INTERPRETERS)
@pytest.mark.parametrize("case", ["external DTD", "public DTD", "general entity",
                                  "parameter entity"])
def test_network_entities_are_refused_and_nothing_connects(interpreter, case, listener):
    url, connections = listener
    assert run_child(interpreter, "parse", network_documents(url)[case]) == {"error": REFUSED}
    assert connections == []


@pytest.mark.parametrize("interpreter", INTERPRETERS)
@pytest.mark.parametrize("case", ["external DTD", "public DTD", "general entity",
                                  "parameter entity"])
def test_the_parser_itself_opens_no_connection(interpreter, case, listener):
    url, connections = listener
    run_child(interpreter, "parser", network_documents(url)[case])
    assert connections == []


@pytest.mark.parametrize("interpreter", INTERPRETERS)
@pytest.mark.parametrize("prolog", PROLOGS, ids=[ascii(p) for p in PROLOGS])
def test_a_doctype_after_any_prolog_is_refused(interpreter, prolog):
    text = prolog + "<!DOCTYPE d [<!ENTITY x 'y'>]><d>&x;</d>"
    assert run_child(interpreter, "parse", text) == {"error": REFUSED}


@pytest.mark.parametrize("interpreter", INTERPRETERS)
@pytest.mark.parametrize("attribute", [False, True], ids=["in text", "in an attribute"])
def test_billion_laughs_is_refused_without_expanding(interpreter, attribute):
    text = billion_laughs(attribute)
    assert run_child(interpreter, "parse", text) == {"error": REFUSED}
    assert "lol" * 100 not in json.dumps(run_child(interpreter, "parser", text))


@pytest.mark.parametrize("interpreter", INTERPRETERS)
def test_a_document_nested_10000_deep_is_a_sentence(interpreter):
    result = run_child(interpreter, "parse", DEEP)
    assert result["error"].startswith("The %s is not well-formed XML: Excessive depth in "
                                      "document: 256" % WHAT), result


@pytest.mark.parametrize("interpreter", INTERPRETERS)
def test_an_undeclared_entity_is_a_sentence(interpreter):
    result = run_child(interpreter, "parse", "<d>&x;</d>")
    assert result["error"].startswith("The %s is not well-formed XML: Entity 'x' not defined"
                                      % WHAT), result


@pytest.mark.parametrize("interpreter", INTERPRETERS)
def test_doctype_text_in_a_comment_or_cdata_is_no_doctype(interpreter):
    text = "<!-- <!DOCTYPE d> --><d><![CDATA[<!DOCTYPE d>]]>&amp;&#65;</d>"
    assert run_child(interpreter, "parse", text) == {"xml": "<d>&lt;!DOCTYPE d&gt;&amp;A</d>"}


def test_bytes_that_are_not_utf8_are_a_sentence():
    from ansible_collections.gridvirt.kvm.plugins.module_utils._common import xmlutil
    from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError
    with pytest.raises(VmError) as err:
        xmlutil.parse("<d>\u00e9</d>".encode("latin-1"), WHAT)
    assert err.value.msg == "The %s is not UTF-8 text." % WHAT
