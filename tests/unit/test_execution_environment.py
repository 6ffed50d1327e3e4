"""meta/execution-environment.yml: `ansible-builder create` makes a build context whose Python
requirements are exactly the third-party packages the collection's controller code imports and
whose system requirements are exactly meta/ee-bindep.txt's, on the base image, ansible-core and
ansible-runner the definition names, with this collection as its Galaxy content. The stages of
the image that need no container are run here too: the Galaxy stage's install of the collection
from the context, then the builder stage's introspection over what it installed (which reads
the installed collection's meta/execution-environment.yml, paths relative to its root). No
container is built: that needs the base image and the network."""
import ast
import importlib.metadata
import importlib.util
import os
import subprocess
import sys

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

import ansible.release
import unit_paths

REPO = unit_paths.REPO
BIN = os.path.dirname(sys.executable)
BUILDER = os.path.join(BIN, "ansible-builder")
GALAXY = os.path.join(BIN, "ansible-galaxy")
DEFINITION = os.path.join(REPO, "meta", "execution-environment.yml")
# Plugin types that never run on the controller (or are documentation only).
NOT_CONTROLLER = {"modules", "module_utils", "doc_fragments"}
OWN_PREFIX = "ansible_collections.gridvirt.kvm."


def run(args, **kwargs):
    proc = subprocess.run(args, capture_output=True, text=True, check=False, **kwargs)
    assert proc.returncode == 0, "%s\n%s%s" % (" ".join(args), proc.stdout, proc.stderr)
    return proc


def python_names(path):
    """Normalised distribution names of a pip requirements file (comments skipped)."""
    names = set()
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                names.add(Requirement(line).name.lower())
    return names


def bindep_names(path):
    with open(path) as f:
        return {line.split()[0] for line in f if line.strip() and not line.startswith("#")}


def imported_modules(path, seen):
    """Top-level names of the modules a Python file imports, following this collection's own
    module_utils (an action plugin that imports one runs its imports on the controller)."""
    if path in seen:
        return set()
    seen.add(path)
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module] + ["%s.%s" % (node.module, a.name) for a in node.names]
        else:
            continue
        for module in modules:
            if module.startswith(OWN_PREFIX):
                own = os.path.join(REPO, *module[len(OWN_PREFIX):].split("."))
                for candidate in (own + ".py", os.path.join(own, "__init__.py")):
                    if os.path.isfile(candidate):
                        names |= imported_modules(candidate, seen)
            else:
                names.add(module.split(".")[0])
    return names


def controller_requirements():
    """Distributions (normalised names) of the third-party modules the controller code imports:
    every plugin type but modules, module_utils and doc fragments, which run on the
    hypervisors or only document."""
    imported, seen = set(), set()
    plugins = os.path.join(REPO, "plugins")
    for plugin_type in sorted(os.listdir(plugins)):
        if plugin_type in NOT_CONTROLLER or not os.path.isdir(os.path.join(plugins, plugin_type)):
            continue
        for root, _dirs, files in os.walk(os.path.join(plugins, plugin_type)):
            for name in files:
                if name.endswith(".py"):
                    imported |= imported_modules(os.path.join(root, name), seen)
    third_party = imported - set(sys.stdlib_module_names) - {"ansible", "ansible_collections"}
    distributions = importlib.metadata.packages_distributions()
    missing = sorted(m for m in third_party if m not in distributions)
    assert missing == [], "controller code imports modules no installed distribution provides"
    return {dist.lower() for m in third_party for dist in distributions[m]}


@pytest.fixture(scope="module")
def definition():
    with open(DEFINITION) as f:
        return yaml.safe_load(f)


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    assert os.path.exists(BUILDER), "ansible-builder is not installed in the venv (requirements-dev.txt)"
    out = tmp_path_factory.mktemp("ee") / "context"
    run([BUILDER, "create", "-f", "meta/execution-environment.yml", "--context", str(out)], cwd=REPO)
    return out


@pytest.fixture(scope="module")
def introspected(context, tmp_path_factory):
    """The Galaxy stage's collection install (in _build, as /build in the image) and the
    builder stage's introspection, run as the generated Containerfile runs them."""
    work = tmp_path_factory.mktemp("stages")
    collections = work / "collections"
    config = work / "ansible.cfg"
    config.write_text("")
    env = dict(os.environ, ANSIBLE_CONFIG=str(config), ANSIBLE_COLLECTIONS_PATH=str(collections),
               ANSIBLE_GALAXY_DISABLE_GPG_VERIFY="1")
    build = context / "_build"
    run([GALAXY, "collection", "install", "--offline", "-r", "requirements.yml",
         "--collections-path", str(collections)], cwd=str(build), env=env)
    installed = collections / "ansible_collections" / "gridvirt" / "kvm"
    assert (installed / "MANIFEST.json").is_file()
    run([sys.executable, str(build / "scripts" / "introspect.py"), "introspect", str(collections),
         "--user-pip=requirements.txt", "--user-bindep=bindep.txt",
         "--write-pip=%s" % (work / "requirements.txt"), "--write-bindep=%s" % (work / "bindep.txt")],
        cwd=str(build), env=env)
    return work


def test_the_definition_is_complete(definition):
    assert definition["version"] == 3
    assert definition["images"]["base_image"]["name"]
    deps = definition["dependencies"]
    assert Requirement(deps["ansible_runner"]["package_pip"]).name == "ansible-runner"
    core = Requirement(deps["ansible_core"]["package_pip"])
    assert core.name == "ansible-core"
    # The ansible-core we test with is in the image's range and in the collection's own.
    with open(os.path.join(REPO, "meta", "runtime.yml")) as f:
        requires = SpecifierSet(yaml.safe_load(f)["requires_ansible"])
    version = ansible.release.__version__
    assert core.specifier.contains(version) and requires.contains(version), (core, requires, version)
    for key in ("galaxy", "python", "system"):
        assert os.path.isfile(os.path.join(REPO, "meta", deps[key])), key


def test_the_context_is_made_from_the_definition(context, definition):
    (instructions,) = [context / n for n in ("Containerfile", "Dockerfile") if (context / n).exists()]
    text = instructions.read_text()
    assert 'ARG EE_BASE_IMAGE="%s"' % definition["images"]["base_image"]["name"] in text
    deps = definition["dependencies"]
    refs = "%s %s" % (deps["ansible_core"]["package_pip"], deps["ansible_runner"]["package_pip"])
    assert 'ARG ANSIBLE_INSTALL_REFS="%s"' % refs in text
    assert "introspect.py introspect --user-pip=requirements.txt --user-bindep=bindep.txt" in text


def test_the_python_requirements_are_what_the_controller_code_imports(context):
    expected = controller_requirements()
    assert expected == {"pyyaml"}, "update meta/ee-requirements.txt (and this line) for %s" % expected
    assert python_names(context / "_build" / "requirements.txt") == expected


def test_the_system_requirements_are_an_ssh_client_only(context):
    assert bindep_names(context / "_build" / "bindep.txt") == {"openssh-clients", "openssh-client"}


def test_the_galaxy_content_is_this_collection(context):
    with open(context / "_build" / "requirements.yml") as f:
        requirements = yaml.safe_load(f)
    assert requirements == {"collections": [{"name": "gridvirt.kvm", "type": "dir"}]}
    with open(context / "_build" / "gridvirt.kvm" / "galaxy.yml") as f:
        galaxy = yaml.safe_load(f)
    assert (galaxy["namespace"], galaxy["name"]) == ("gridvirt", "kvm")
    for path in ("plugins/action/vm_render.py", "plugins/modules/cluster_vm.py",
                 "roles/deploy_vms_cluster/tasks/main.yml", "playbooks/deploy_vms_cluster.yaml",
                 "templates/vm/domain.xml.j2", "meta/runtime.yml"):
        assert (context / "_build" / "gridvirt.kvm" / path).is_file(), path


def test_the_image_gets_exactly_those_requirements(introspected):
    """What the builder stage writes for the final image: the definition's requirements and
    the installed collection's own (the same files, read from its root's links)."""
    assert python_names(introspected / "requirements.txt") == controller_requirements()
    assert bindep_names(introspected / "bindep.txt") == {"openssh-clients", "openssh-client"}
    assert "from collection gridvirt.kvm" in (introspected / "bindep.txt").read_text()


def test_the_collection_from_its_tarball_is_introspected(tmp_path):
    """Any execution environment that installs gridvirt.kvm (from Galaxy or a tarball) reads its
    meta/execution-environment.yml with paths relative to the collection's root."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(tmp_path / "none.cfg"))
    run([GALAXY, "collection", "build", REPO, "--output-path", str(tmp_path)], env=env)
    (tarball,) = tmp_path.glob("gridvirt-kvm-*.tar.gz")
    run([GALAXY, "collection", "install", "--offline", "--force", str(tarball),
         "-p", str(tmp_path / "collections")], env=env)
    introspect = os.path.join(os.path.dirname(importlib.util.find_spec("ansible_builder").origin),
                              "_target_scripts", "introspect.py")
    out = run([sys.executable, introspect, "introspect", str(tmp_path / "collections")]).stdout
    data = yaml.safe_load(out)
    # PyYAML is dropped by the introspection as part of every image (ansible-core needs it).
    assert data["python"] == []
    assert {line.split()[0] for line in data["system"]} == {"openssh-clients", "openssh-client"}
