"""A Secret or ConfigMap volume written as the kubelet writes one (its atomic writer), for the
pod launcher and for tests that rotate a mounted credential under a running proxy."""
import os
import time


def write_atomically(path, files):
    """Writes `files` ({name: (content, mode)}) into the volume directory `path`: the files in a
    fresh timestamped directory, `..data` swapped to it by a rename, each file a link through
    `..data` — a reader sees the old content or the new, never a mix. The previous directory is
    removed."""
    os.makedirs(path, exist_ok=True)
    stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime()) + str(time.time_ns() % 10**9)
    fresh = os.path.join(path, stamp)
    os.makedirs(fresh)
    for name, (content, mode) in files.items():
        target = os.path.join(fresh, name)
        with open(target, "w") as f:
            f.write(content)
        os.chmod(target, mode)
    data_link = os.path.join(path, "..data")
    previous = os.readlink(data_link) if os.path.islink(data_link) else None
    os.symlink(stamp, data_link + "_tmp")
    os.rename(data_link + "_tmp", data_link)
    for name in files:
        link = os.path.join(path, name)
        if not os.path.islink(link):
            os.symlink(os.path.join("..data", name), link)
    if previous:
        for name in os.listdir(os.path.join(path, previous)):
            os.unlink(os.path.join(path, previous, name))
        os.rmdir(os.path.join(path, previous))
