"""Shared pytest setup: the collection is importable as ansible_collections.gridvirt.kvm
through the link tree that `make links` creates in .build/."""
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(REPO, ".build")
link = os.path.join(BUILD, "ansible_collections", "gridvirt", "kvm")
if not os.path.exists(link):
    os.makedirs(os.path.dirname(link), exist_ok=True)
    os.symlink(os.path.relpath(REPO, os.path.dirname(link)), link)
if BUILD not in sys.path:
    sys.path.insert(0, BUILD)
