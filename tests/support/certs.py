"""A throw-away test CA and certificates made with the openssl command."""
import os
import shutil
import subprocess


def have_openssl():
    return shutil.which("openssl") is not None


def _run(args, cwd):
    subprocess.run(["openssl"] + args, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_ca(folder, name="ca"):
    """(cert path, key path) of a new self-signed CA."""
    key, cert = os.path.join(folder, name + ".key"), os.path.join(folder, name + ".pem")
    _run(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=%s" % name,
          "-keyout", key, "-out", cert], folder)
    return cert, key


def make_cert(folder, ca, name, server=True):
    """(cert path, key path) signed by `ca`; servers get SANs for 127.0.0.1 and localhost."""
    ca_cert, ca_key = ca
    key, csr, cert = (os.path.join(folder, name + ext) for ext in (".key", ".csr", ".pem"))
    ext = os.path.join(folder, name + ".ext")
    with open(ext, "w") as f:
        if server:
            f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
        else:
            f.write("extendedKeyUsage=clientAuth\n")
    _run(["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=%s" % name, "-keyout", key, "-out", csr], folder)
    _run(["x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial", "-days", "2",
          "-extfile", ext, "-out", cert], folder)
    return cert, key
