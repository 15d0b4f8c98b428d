#!/usr/bin/env bash
# Builds (or reuses) the local control-plane binaries from this wrapper module:
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok.
# Binaries go to ${KUBEMCP_CACHE:-~/.cache/kubemcp}/<k8s-version>-<kwok-version>/ and are rebuilt
# only when a version in go.mod changes. Prints that directory on its last line.
# A cold build takes 20-40 minutes on 2 cores; progress is printed per binary.
set -euo pipefail
cd "$(dirname "$0")"
# The version following a module path in go.mod, whether in a require block or a one-line require.
modver() { awk -v m="$1" '{for (i = 1; i < NF; i++) if ($i == m) {print $(i + 1); exit}}' go.mod; }
k8s=$(modver k8s.io/kubernetes)
kwok=$(modver sigs.k8s.io/kwok)
etcd=$(modver go.etcd.io/etcd/server/v3)
dir=${KUBEMCP_CACHE:-$HOME/.cache/kubemcp}/$k8s-kwok$kwok-etcd$etcd
mkdir -p "$dir"
export CGO_ENABLED=0
minor=${k8s#v1.}; minor=${minor%%.*}
vpkg=k8s.io/component-base/version
k8sflags="-X $vpkg.gitVersion=$k8s -X $vpkg.gitMajor=1 -X $vpkg.gitMinor=$minor -X $vpkg.gitTreeState=clean"
build() { # name package [extra ldflags]
  if [ -x "$dir/$1" ]; then echo "[cluster] $1: cached" >&2; return; fi
  local t0=$SECONDS
  echo "[cluster] building $1 ($2) ..." >&2
  go build -trimpath -ldflags="-s -w ${3:-}" -o "$dir/$1.tmp" "$2"
  mv "$dir/$1.tmp" "$dir/$1"
  echo "[cluster] built $1 in $((SECONDS - t0)) s" >&2
}
build etcd ./etcd
build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "$k8sflags"
build kwok sigs.k8s.io/kwok/cmd/kwok
build kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler "$k8sflags"
build kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager "$k8sflags"
# Not needed by the tests; for exploring the demo cluster (`npm run demo`) without a kubectl of your own.
build kubectl k8s.io/kubernetes/cmd/kubectl "$k8sflags"
echo "$dir"
