#!/usr/bin/env bash
# A server certificate for one more development Docker daemon, signed by the one dev CA of certs.sh.
#
#   deploy/dev/host-cert.sh CERTS OUT NAME
#
# CERTS holds ca.pem and ca-key.pem (deploy/dev/certs.sh); OUT receives server-cert.pem and
# server-key.pem with CN "sessionctl dev dockerd NAME" and SAN IP:127.0.0.1, DNS:localhost. The
# client certificate in CERTS is thus accepted by every daemon and every daemon's certificate
# verifies against the same ca.pem, which is what a fleet of hosts behind one CA looks like.
# Idempotent: a present certificate that verifies against the current CA and does not expire
# within 7 days is kept; otherwise (say, the CA was renewed) the pair is signed again.
set -euo pipefail

[[ $# -eq 3 ]] || { echo "usage: $0 CERTS OUT NAME" >&2; exit 2; }
CERTS=$1 OUT=$2 NAME=$3
DAYS=825

if [[ -s $OUT/server-cert.pem && -s $OUT/server-key.pem ]] \
  && openssl x509 -checkend 604800 -noout -in "$OUT/server-cert.pem" >/dev/null 2>&1 \
  && openssl verify -CAfile "$CERTS/ca.pem" "$OUT/server-cert.pem" >/dev/null 2>&1; then
  exit 0
fi

mkdir -p "$OUT"
TMP=$(mktemp -d "$OUT/.certs.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
umask 077
cat >"$TMP/server.ext" <<'EXT'
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
EXT
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$TMP/server-key.pem" 2>/dev/null
openssl req -new -sha256 -key "$TMP/server-key.pem" -subj "/CN=sessionctl dev dockerd $NAME" -out "$TMP/req.csr"
openssl x509 -req -sha256 -days "$DAYS" -in "$TMP/req.csr" -CA "$CERTS/ca.pem" -CAkey "$CERTS/ca-key.pem" \
  -set_serial "0x$(openssl rand -hex 16)" -extfile "$TMP/server.ext" -out "$TMP/server-cert.pem" 2>/dev/null
openssl verify -CAfile "$CERTS/ca.pem" "$TMP/server-cert.pem" >/dev/null
chmod 0600 "$TMP/server-key.pem"
chmod 0444 "$TMP/server-cert.pem"
rm -f "$OUT/server-cert.pem" "$OUT/server-key.pem"
mv "$TMP/server-key.pem" "$TMP/server-cert.pem" "$OUT/"
echo "certs: signed the server certificate of $NAME in $OUT"
