# shellcheck shell=bash
# azurite.sh - Azurite's well-known development account, and SAS tokens for
# curl requests straight to it.  Sourced by tests/integration/lib.sh and
# packaging/demo.sh.  The key is Azurite's public, documented development
# key: it opens nothing but a local emulator.

AZURITE_ACCOUNT=devstoreaccount1
AZURITE_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='

# azurite_sas: prints an account SAS (version 2019-12-12, all permissions,
# blob service), signed with openssl.
azurite_sas() {
    local se=2099-01-01T00:00:00Z sv=2019-12-12 hexkey sig
    hexkey=$(printf %s "$AZURITE_KEY" | base64 -d | od -An -vtx1 | tr -d ' \n')
    sig=$(printf '%s\n' "$AZURITE_ACCOUNT" rwdlacup b sco "" "$se" "" "" "$sv" |
        openssl dgst -sha256 -mac HMAC -macopt "hexkey:$hexkey" -binary | base64)
    sig=$(printf %s "$sig" | sed 's/+/%2B/g; s|/|%2F|g; s/=/%3D/g')
    echo "sv=$sv&ss=b&srt=sco&sp=rwdlacup&se=${se//:/%3A}&sig=$sig"
}
