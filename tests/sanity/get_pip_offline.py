"""Stand-in for the get-pip.py bootstrap script that ansible-test downloads from a host these
machines cannot reach (only package registries are reachable). ansible-test documents saving
the script to ~/.ansible/test/cache/get_pip_<version>.py; `make sanity` saves this one there.

It does what get-pip does, from the registry: bootstrap pip with the interpreter's own
ensurepip, then install the requested packages (e.g. pip==25.2) with that pip.
"""
import subprocess
import sys

# get-pip options that `pip install` does not know.
GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}


def main():
    args = [a for a in sys.argv[1:] if a not in GET_PIP_ONLY]
    subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"],
                          stdout=subprocess.DEVNULL)
    subprocess.check_call([sys.executable, "-m", "pip", "install"] + args)


if __name__ == "__main__":
    main()
