#!/usr/bin/env bash
# Regenerates Sources/WireProtocol/*.pb.swift from Proto/*.proto.
#
# The generated Swift is committed, so building Shoal never needs protoc or the plugin; run this
# after editing a .proto and commit both. Safe to run repeatedly: files are only rewritten when
# their content changes, and stale .pb.swift files (whose .proto is gone) are removed.
#
# Needs protoc (apt: protobuf-compiler). protoc-gen-swift must match the SwiftProtobuf runtime
# the package resolves, so it is looked up in this order and built from source when missing:
#   $PROTOC_GEN_SWIFT, protoc-gen-swift on PATH, then $SWIFT_PROTOBUF_CHECKOUT (default
#   ${TMPDIR:-/tmp}/swift-protobuf) — each only if its --version matches.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
proto_dir="$repo/Proto"
out_dir="$repo/Sources/WireProtocol"

say() { printf 'gen-proto: %s\n' "$*"; }
die() { printf 'gen-proto: error: %s\n' "$*" >&2; exit 1; }

command -v protoc >/dev/null || die "protoc not found (apt-get install protobuf-compiler)"

# The SwiftProtobuf version the package resolves to: Package.resolved if present, else the
# newest tag the mirror of the URL in Package.swift offers within the declared major version.
swift_protobuf_version() {
  local resolved="$repo/Package.resolved"
  if [[ -f $resolved ]]; then
    local v
    v=$(tr -d ' \n' <"$resolved" | grep -o '"identity":"swift-protobuf"[^}]*"version":"[0-9.]*"' \
      | grep -o '[0-9][0-9.]*"$' | tr -d '"' || true)
    [[ -n $v ]] && { echo "$v"; return; }
  fi
  local url from major
  url=$(grep -o 'https://github.com/apple/swift-protobuf[^"]*' "$repo/Package.swift" | head -n1)
  from=$(grep -o 'swift-protobuf", from: "[0-9.]*"' "$repo/Package.swift" | grep -o '[0-9][0-9.]*')
  [[ -n $url && -n $from ]] || die "cannot find swift-protobuf in Package.swift"
  major=${from%%.*}
  git ls-remote --tags --refs "$url" | sed 's|.*refs/tags/||' | grep -E "^$major\.[0-9]+\.[0-9]+$" \
    | sort -t. -k1,1n -k2,2n -k3,3n | tail -n1
}

version=$(swift_protobuf_version)
[[ -n $version ]] || die "cannot determine the swift-protobuf version"

plugin_matches() { [[ -x $1 ]] && [[ $("$1" --version 2>/dev/null) == "protoc-gen-swift $version" ]]; }

checkout=${SWIFT_PROTOBUF_CHECKOUT:-${TMPDIR:-/tmp}/swift-protobuf}
plugin=""
for candidate in "${PROTOC_GEN_SWIFT:-}" "$(command -v protoc-gen-swift || true)" \
  "$checkout/.build/release/protoc-gen-swift"; do
  if [[ -n $candidate ]] && plugin_matches "$candidate"; then plugin=$candidate; break; fi
done

if [[ -z $plugin ]]; then
  [[ -d $checkout/.git ]] && [[ $(git -C "$checkout" describe --tags 2>/dev/null) != "$version" ]] \
    && checkout="$checkout-$version"
  if [[ ! -d $checkout/.git ]]; then
    say "cloning swift-protobuf $version into $checkout"
    git -c advice.detachedHead=false clone --quiet --depth 1 --branch "$version" https://github.com/apple/swift-protobuf "$checkout"
  fi
  say "building protoc-gen-swift $version (release)"
  (cd "$checkout" && swift build -c release --product protoc-gen-swift >/dev/null)
  plugin="$checkout/.build/release/protoc-gen-swift"
  plugin_matches "$plugin" || die "built $plugin but it does not report version $version"
fi
say "using $plugin ($version), $(protoc --version)"

shopt -s nullglob
protos=("$proto_dir"/*.proto)
(( ${#protos[@]} > 0 )) || die "no .proto files in $proto_dir"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
protoc --plugin=protoc-gen-swift="$plugin" --proto_path="$proto_dir" \
  --swift_opt=Visibility=Public --swift_out="$tmp" "${protos[@]##*/}"

mkdir -p "$out_dir"
changed=0
for generated in "$tmp"/*.pb.swift; do
  name=${generated##*/}
  if cmp -s "$generated" "$out_dir/$name"; then
    say "unchanged Sources/WireProtocol/$name"
  else
    cp "$generated" "$out_dir/$name"
    say "wrote     Sources/WireProtocol/$name"
    changed=$((changed + 1))
  fi
done
for existing in "$out_dir"/*.pb.swift; do
  name=${existing##*/}
  if [[ ! -f $tmp/$name ]]; then
    rm "$existing"
    say "removed   Sources/WireProtocol/$name (no matching .proto)"
    changed=$((changed + 1))
  fi
done
say "$changed file(s) changed"
