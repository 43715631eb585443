"""An LD_PRELOAD shim over libc's fsync/fdatasync for the process it is loaded into (the
gateway under test or benchmark), compiled with the machine's C compiler:

- SLOW_FSYNC_MS=n: every call is delayed by n ms (an SD card's slow flush);
- FSYNC_BLOCK_FILE=path: while that file exists, every call waits (a write that does not
  return: a dying card, a hung network file system), and goes on once it is removed.
"""
import os
import shutil
import subprocess

SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <unistd.h>
static void before_sync(void) {
    const char *ms = getenv("SLOW_FSYNC_MS");
    const char *block = getenv("FSYNC_BLOCK_FILE");
    if (ms) usleep(atol(ms) * 1000L);
    while (block && access(block, F_OK) == 0) usleep(50000);
}
int fsync(int fd) {
    static int (*real)(int) = 0;
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    before_sync();
    return real(fd);
}
int fdatasync(int fd) {
    static int (*real)(int) = 0;
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    before_sync();
    return real(fd);
}
"""


def compiler():
    return shutil.which("cc") or shutil.which("gcc")


def build_shim(folder):
    # type: (str) -> str
    """Compile the shim into `folder`; returns the library's path (RuntimeError without a compiler)."""
    source, library = os.path.join(folder, "fsyncshim.c"), os.path.join(folder, "fsyncshim.so")
    with open(source, "w") as f:
        f.write(SHIM)
    if compiler() is None:
        raise RuntimeError("a C compiler is needed for the fsync shim (apt-get install -y gcc)")
    subprocess.run([compiler(), "-shared", "-fPIC", "-O2", "-o", library, source, "-ldl"], check=True)
    return library
