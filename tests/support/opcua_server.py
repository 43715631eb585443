"""python-opcua's own Server with a small address space built for the tests."""
import os

from opcua import Server, ua

from tests.support.broker import free_port, wait_port


class OpcUaServer(object):
    """Objects/MyObject (Temperature, Humidity, Relay, Name, multiply()) and
    Objects/Meters/Meter1..2 (Level, Serial)."""

    def __init__(self, port=None, certificate=None, private_key=None):
        self.port = port or free_port()
        self.url = "opc.tcp://127.0.0.1:%d/freeopcua/server/" % self.port
        self.certificate, self.private_key = certificate, private_key
        self.server = None
        self.start()

    def start(self):
        server = Server()
        server.set_endpoint(self.url)
        if self.certificate:
            server.load_certificate(self.certificate)
            server.load_private_key(self.private_key)
            server.set_security_policy([ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt])
        idx = server.register_namespace("http://tests.thingsboard-gateway")
        objects = server.get_objects_node()
        my = objects.add_object(idx, "MyObject")
        self.temperature = my.add_variable(idx, "Temperature", 21.5)
        self.humidity = my.add_variable(idx, "Humidity", 40)
        self.relay = my.add_variable(idx, "Relay", False)
        self.name = my.add_variable(idx, "Name", "Boiler")
        for variable in (self.temperature, self.humidity, self.relay):
            variable.set_writable()

        def multiply(parent, a, b):
            return [ua.Variant(a.Value * b.Value, ua.VariantType.Int64)]

        my.add_method(idx, "multiply", multiply, [ua.VariantType.Int64, ua.VariantType.Int64],
                      [ua.VariantType.Int64])
        meters = objects.add_folder(idx, "Meters")
        self.levels = []
        for i in (1, 2):
            meter = meters.add_object(idx, "Meter%d" % i)
            self.levels.append(meter.add_variable(idx, "Level", float(i * 10)))
            meter.add_variable(idx, "Serial", "M-%d" % i)
        self.my_object = my
        server.start()
        self.server = server
        if not wait_port(self.port):
            raise RuntimeError("OPC-UA server did not start")

    def stop(self):
        if self.server is not None:
            self.server.stop()
            self.server = None


def make_certificate(folder, name):
    """(cert path, key path): a self-signed certificate for OPC-UA, made with cryptography."""
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.utcnow()
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier("urn:%s" % name),
                                                        x509.DNSName("localhost")]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = os.path.join(folder, name + ".der"), os.path.join(folder, name + ".pem")
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.DER))
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                  serialization.NoEncryption()))
    return cert_path, key_path
