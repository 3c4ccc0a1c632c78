#!/usr/bin/env bash
# Mutual-TLS material for production Docker hosts and the sessionctl controller.
#
#   deploy/docker-tls/make-certs.sh OUT --host NAME [--host NAME ...] [--ip ADDR ...] [--days N] [--reuse-ca]
#
# Writes three folders, one per party, each holding only what that party needs:
#   OUT/ca/      ca.pem, ca-key.pem          keep ca-key.pem offline: whoever holds it can sign clients
#   OUT/server/  ca.pem, server-cert.pem, server-key.pem   for dockerd (see daemon.json)
#   OUT/client/  ca.pem, cert.pem, key.pem   for the controller: DOCKER_CERT_PATH=OUT/client
#
# The server certificate carries every --host as DNS and every --ip as IP subjectAltName: clients
# verify the name they dial against these, and a certificate without SANs is refused outright.
# Keys are 0400 and certificates 0444, as the old manager's checklist asked; the folders are 0700
# except client/ and server/ are 0750 so a service group can be given read access.
# --reuse-ca signs new server and client certificates with the existing CA (rotation without
# touching every client's trust store). Without it, OUT must not exist yet: nothing is overwritten.
set -euo pipefail

usage() {
  sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

OUT=${1:-}
[[ -n $OUT && $OUT != -* ]] || usage
shift
HOSTS=() IPS=() DAYS=365 REUSE_CA=0
while (($#)); do
  case $1 in
    --host) HOSTS+=("${2:?--host needs a DNS name}"); shift 2 ;;
    --ip) IPS+=("${2:?--ip needs an address}"); shift 2 ;;
    --days) DAYS=${2:?--days needs a number}; shift 2 ;;
    --reuse-ca) REUSE_CA=1; shift ;;
    *) echo "make-certs: unknown argument $1" >&2; usage ;;
  esac
done
((${#HOSTS[@]} + ${#IPS[@]} > 0)) || { echo "make-certs: give at least one --host or --ip for the Docker host's certificate" >&2; exit 2; }
command -v openssl >/dev/null || { echo "make-certs: openssl not found (apt-get install openssl)" >&2; exit 1; }

if ((REUSE_CA)); then
  [[ -s $OUT/ca/ca.pem && -s $OUT/ca/ca-key.pem ]] || { echo "make-certs: --reuse-ca needs $OUT/ca/ca.pem and ca-key.pem" >&2; exit 1; }
elif [[ -e $OUT ]]; then
  echo "make-certs: $OUT exists; refusing to overwrite it. Use --reuse-ca to rotate the leaf certificates, or another folder." >&2
  exit 1
fi

umask 077
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

if ((REUSE_CA)); then
  cp "$OUT/ca/ca.pem" "$OUT/ca/ca-key.pem" "$TMP/"
else
  newkey "$TMP/ca-key.pem"
  # The CA lives longer than the leaves so that rotating them does not touch trust stores.
  openssl req -new -x509 -sha256 -days $((DAYS * 5)) -key "$TMP/ca-key.pem" -subj "/CN=sessionctl Docker CA" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" -addext "keyUsage=critical,keyCertSign,cRLSign" -out "$TMP/ca.pem"
fi

san=()
for host in "${HOSTS[@]}"; do san+=("DNS:$host"); done
for ip in "${IPS[@]}"; do san+=("IP:$ip"); done
printf 'basicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature, keyEncipherment\nextendedKeyUsage = serverAuth\nsubjectAltName = %s\n' \
  "$(IFS=,; echo "${san[*]}")" >"$TMP/server.ext"
printf 'basicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\nextendedKeyUsage = clientAuth\n' >"$TMP/client.ext"

sign() { # KEY CERT CN EXTFILE
  newkey "$TMP/$1"
  openssl req -new -sha256 -key "$TMP/$1" -subj "/CN=$3" -out "$TMP/req.csr"
  openssl x509 -req -sha256 -days "$DAYS" -in "$TMP/req.csr" -CA "$TMP/ca.pem" -CAkey "$TMP/ca-key.pem" \
    -set_serial "0x$(openssl rand -hex 16)" -extfile "$4" -out "$TMP/$2" 2>/dev/null
}
sign server-key.pem server-cert.pem "${HOSTS[0]:-${IPS[0]}}" "$TMP/server.ext"
sign key.pem cert.pem sessionctl-controller "$TMP/client.ext"
openssl verify -CAfile "$TMP/ca.pem" "$TMP/server-cert.pem" "$TMP/cert.pem" >/dev/null

# install FILE DEST MODE: replace atomically, so a reader never sees half a file.
install_file() {
  local tmp
  tmp=$(mktemp "$2.XXXXXX")
  cat "$1" >"$tmp"
  chmod "$3" "$tmp"
  mv -f "$tmp" "$2"
}
mkdir -p "$OUT/ca" "$OUT/server" "$OUT/client"
chmod 0700 "$OUT/ca"
chmod 0750 "$OUT/server" "$OUT/client"
if ((!REUSE_CA)); then
  install_file "$TMP/ca-key.pem" "$OUT/ca/ca-key.pem" 0400
  install_file "$TMP/ca.pem" "$OUT/ca/ca.pem" 0444
fi
install_file "$TMP/ca.pem" "$OUT/server/ca.pem" 0444
install_file "$TMP/server-cert.pem" "$OUT/server/server-cert.pem" 0444
install_file "$TMP/server-key.pem" "$OUT/server/server-key.pem" 0400
install_file "$TMP/ca.pem" "$OUT/client/ca.pem" 0444
install_file "$TMP/cert.pem" "$OUT/client/cert.pem" 0444
install_file "$TMP/key.pem" "$OUT/client/key.pem" 0400

echo "make-certs: wrote $OUT/{ca,server,client} (server SAN: $(IFS=,; echo "${san[*]}"); valid $DAYS days)"
