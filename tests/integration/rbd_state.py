"""The RBD side of a cluster fingerprint in one process (run by the distribution's Python,
where the rados and rbd bindings live): every image with its id, size, snapshots and
metadata, every group with its members and snapshots, the trash. One connection instead of
the rbd CLI's one per question: the bad-input tables take two fingerprints per case.

    /usr/bin/python3 rbd_state.py <pool> <ceph user>   -> JSON on stdout
"""
import json
import sys

import rados
import rbd


def image_state(ioctx, name):
    with rbd.Image(ioctx, name, read_only=True) as img:
        snaps = []
        for snap in img.list_snaps():
            user = snap.get("namespace", rbd.RBD_SNAP_NAMESPACE_TYPE_USER) == \
                rbd.RBD_SNAP_NAMESPACE_TYPE_USER
            snaps.append([snap["name"], img.is_protected_snap(snap["name"]) if user else None])
        return [img.id(), img.size(), sorted(snaps), dict(img.metadata_list())]


def group_state(ioctx, name):
    group = rbd.Group(ioctx, name)
    return [sorted(i["name"] for i in group.list_images()),
            sorted(s["name"] for s in group.list_snaps())]


def main(pool, user):
    with rados.Rados(conffile="/etc/ceph/ceph.conf", rados_id=user) as cluster:
        with cluster.open_ioctx(pool) as ioctx:
            api = rbd.RBD()
            state = {
                "images": dict((n, image_state(ioctx, n)) for n in sorted(api.list(ioctx))),
                "groups": dict((g, group_state(ioctx, g)) for g in sorted(api.group_list(ioctx))),
                "trash": sorted(entry["name"] for entry in api.trash_list(ioctx)),
            }
    json.dump(state, sys.stdout, sort_keys=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
