#!/usr/bin/env bash
# Create the mutual-TLS material for the development Docker daemon.
#
#   deploy/dev/certs.sh DIR [--force]
#
# Writes into DIR (names are the ones DOCKER_CERT_PATH expects for a client):
#   ca.pem, ca-key.pem                 throwaway CA (EC P-256)
#   server-cert.pem, server-key.pem    dockerd's cert: SAN IP:127.0.0.1,DNS:localhost, serverAuth
#   cert.pem, key.pem                  client cert (CN=sessionctl-client), clientAuth
#
# Idempotent: if every file is present, the chain verifies and nothing expires
# within 7 days, it does nothing. Otherwise (or with --force) it regenerates the
# whole set, so the files always belong to one CA. Keys are 0600 (readable by the
# owner, i.e. the user running this script), certificates 0444.
set -euo pipefail

usage() { echo "usage: $0 DIR [--force]" >&2; exit 2; }
[[ $# -ge 1 ]] || usage
DIR=$1
FORCE=${2:-}
[[ -z $FORCE || $FORCE == --force ]] || usage

DAYS=825 # the maximum validity TLS clients accept for leaf certificates
FILES=(ca.pem ca-key.pem server-cert.pem server-key.pem cert.pem key.pem)

command -v openssl >/dev/null || { echo "certs.sh: openssl not found (apt-get install openssl)" >&2; exit 1; }

certs_ok() {
  local f
  for f in "${FILES[@]}"; do [[ -s $DIR/$f ]] || return 1; done
  # 604800 s = 7 days: regenerate a bit before expiry rather than fail mid-test.
  for f in ca.pem server-cert.pem cert.pem; do
    openssl x509 -checkend 604800 -noout -in "$DIR/$f" >/dev/null 2>&1 || return 1
  done
  openssl verify -CAfile "$DIR/ca.pem" "$DIR/server-cert.pem" "$DIR/cert.pem" >/dev/null 2>&1 || return 1
}

if [[ $FORCE != --force ]] && certs_ok; then
  echo "certs: present in $DIR"
  exit 0
fi

mkdir -p "$DIR"
# Build in a temporary directory next to DIR and move the files in at the end,
# so an interrupted run never leaves a half-written set behind.
TMP=$(mktemp -d "$DIR/.certs.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
umask 077

newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# --- CA --------------------------------------------------------------------
newkey "$TMP/ca-key.pem"
openssl req -new -x509 -sha256 -days "$DAYS" -key "$TMP/ca-key.pem" \
  -subj "/CN=sessionctl dev CA" \
  -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -out "$TMP/ca.pem"

# sign NAME CN EXTFILE: key NAME-key, CSR, certificate signed by the CA.
sign() {
  local key=$1 crt=$2 cn=$3 ext=$4
  newkey "$TMP/$key"
  openssl req -new -sha256 -key "$TMP/$key" -subj "/CN=$cn" -out "$TMP/req.csr"
  openssl x509 -req -sha256 -days "$DAYS" -in "$TMP/req.csr" \
    -CA "$TMP/ca.pem" -CAkey "$TMP/ca-key.pem" -set_serial "0x$(openssl rand -hex 16)" \
    -extfile "$ext" -out "$TMP/$crt" 2>/dev/null
  rm -f "$TMP/req.csr"
}

cat >"$TMP/server.ext" <<'EOF'
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
EOF
cat >"$TMP/client.ext" <<'EOF'
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
EOF

sign server-key.pem server-cert.pem "sessionctl dev dockerd" "$TMP/server.ext"
sign key.pem cert.pem "sessionctl-client" "$TMP/client.ext"

openssl verify -CAfile "$TMP/ca.pem" "$TMP/server-cert.pem" "$TMP/cert.pem" >/dev/null

chmod 0600 "$TMP"/*-key.pem "$TMP/key.pem"
chmod 0444 "$TMP/ca.pem" "$TMP/server-cert.pem" "$TMP/cert.pem"
for f in "${FILES[@]}"; do
  rm -f "$DIR/$f" # certs are 0444; mv over them is fine, but be explicit
  mv "$TMP/$f" "$DIR/$f"
done
echo "certs: generated CA, server and client certificates in $DIR"
