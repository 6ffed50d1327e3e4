"""A source VM removed while a linked clone still uses its image goes to the trash; purging
the clone later releases the source's clone snapshot even there, so the trashed image can
be purged instead of staying in Ceph forever."""
import cluster_lab as cl

PREFIX = "ict"
SRC, CLONE = PREFIX + "src", PREFIX + "lnk"

clean = cl.cleanup_fixture(PREFIX)


def trashed(name):
    return [e for e in cl.rbd("trash", "ls") if e["name"] == name]


def test_clone_of_a_trashed_source_releases_its_snapshot():
    cl.ok(cl.vm_args(SRC, state="present", additional_disks=[], preferred_host=None))
    cl.ok({"name": CLONE, "command": "clone", "src_name": SRC})
    removed = cl.run_cluster({"name": SRC, "state": "absent", "purge": True})
    assert removed["changed"]  # purge asked, but the clone still reads the image: trash
    [entry] = trashed("system_" + SRC)
    snaps = cl.rbd("snap", "ls", "--all", "--image-id", entry["id"])
    assert [s["name"] for s in snaps] == ["gvclone-" + CLONE]

    assert cl.ok({"name": CLONE, "state": "absent", "purge": True})["changed"]
    assert cl.rbd("snap", "ls", "--all", "--image-id", entry["id"]) == []
    cl.rbd_change("trash", "rm", "--force", entry["id"])
    assert trashed("system_" + SRC) == []
