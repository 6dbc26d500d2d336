#!/usr/bin/env python3
"""certcn: rewrites the subject CN of a PEM certificate to any bytes (NUL,
'+', '#', '/', 10 KB: what `openssl req -subj` refuses to write) and prints
the unsigned result as PEM. Re-sign it with the issuing CA afterwards:

    certcn.py IN.pem 'claimsvc-1\\x00evil' > tmp.pem
    openssl x509 -in tmp.pem -CA ca.pem -CAkey ca.key -set_serial 7 -out OUT.pem

The new CN goes through Python's bytes escapes. Standard library only: a
minimal DER walk (definite lengths) that re-encodes the enclosing lengths.
"""
import base64
import codecs
import re
import sys


def parse(b, off=0, end=None):
    """DER -> list of [tag, content-bytes or children-list]."""
    end = len(b) if end is None else end
    out = []
    while off < end:
        tag = b[off]
        n = b[off + 1]
        off += 2
        if n & 0x80:
            k = n & 0x7F
            n = int.from_bytes(b[off:off + k], "big")
            off += k
        content = b[off:off + n]
        node = [tag, parse(b, off, off + n) if tag & 0x20 else content]
        out.append(node)
        off += n
    return out


def enc_len(n):
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def encode(nodes):
    out = b""
    for tag, content in nodes:
        data = encode(content) if isinstance(content, list) else content
        out += bytes([tag]) + enc_len(len(data)) + data
    return out


CN_OID = bytes.fromhex("550403")


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    pem = open(sys.argv[1]).read()
    der = base64.b64decode("".join(re.search(
        r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", pem, re.S).group(1).split()))
    cert = parse(der)
    tbs = cert[0][1][0][1]
    # TBSCertificate: [0] version, serial, sigalg, issuer, validity, subject, ...
    idx = 1 if tbs[0][0] == 0xA0 else 0
    subject = tbs[idx + 4][1]
    new_cn = codecs.escape_decode(sys.argv[2].encode("utf-8"))[0]
    done = False
    for rdn in subject:
        for atv in rdn[1]:
            if atv[1][0][1] == CN_OID:
                atv[1][1] = [0x0C, new_cn]  # UTF8String
                done = True
    if not done:
        print("certcn: no CN in the subject", file=sys.stderr)
        return 1
    body = base64.encodebytes(encode(cert)).decode().replace("\n", "")
    print("-----BEGIN CERTIFICATE-----")
    for i in range(0, len(body), 64):
        print(body[i:i + 64])
    print("-----END CERTIFICATE-----")
    return 0


if __name__ == "__main__":
    sys.exit(main())
