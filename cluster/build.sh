#!/usr/bin/env bash
# Builds (or reuses) the local cluster's binaries from Go modules, each cached by version:
# - control plane, from this folder's wrapper module: etcd, kube-apiserver, kube-controller-manager,
#   kube-scheduler, kwok, kubectl, helm (tools/helm), and the real node's kubelet and kube-proxy, into
#   ${KUBEMCP_CACHE:-~/.cache/kubemcp}/<k8s-version>-kwok<v>-etcd<v>/;
# - the real node's runtime, from the wrapper modules in node/: containerd, containerd-shim-runc-v2,
#   ctr, runc (cgo + libseccomp), coredns, kube-network-policies (NetworkPolicy enforcement) and
#   metrics-server (metrics.k8s.io; optional: its failure only leaves it out), into
#   .../node-containerd<v>-runc<v>-coredns<v>/.
# A binary is rebuilt only when a version in a go.mod changes. Progress and each build's time go
# to stderr. Output (stdout): `node <dir>` (absent when the node runtime could not be built, e.g.
# without libseccomp-dev: the cluster then runs kwok only), then the control-plane dir on the
# last line. Set KUBEMCP_NO_REAL_NODE=1 to skip the node runtime.
# A cold build takes 20-40 minutes on 2 cores (measured times: README, "The local cluster").
set -euo pipefail
cd "$(dirname "$0")"
here=$PWD
t_all=$SECONDS
# The version following a module path in a go.mod, whether in a require block or a one-line require.
modver() { awk -v m="$1" '{for (i = 1; i < NF; i++) if ($i == m) {print $(i + 1); exit}}' "${2:-go.mod}"; }
k8s=$(modver k8s.io/kubernetes)
kwok=$(modver sigs.k8s.io/kwok)
etcd=$(modver go.etcd.io/etcd/server/v3)
cache=${KUBEMCP_CACHE:-$HOME/.cache/kubemcp}
dir=$cache/$k8s-kwok$kwok-etcd$etcd
mkdir -p "$dir"
export CGO_ENABLED=0
minor=${k8s#v1.}; minor=${minor%%.*}
vpkg=k8s.io/component-base/version
k8sflags="-X $vpkg.gitVersion=$k8s -X $vpkg.gitMajor=1 -X $vpkg.gitMinor=$minor -X $vpkg.gitTreeState=clean"
build() { # out-dir name package [extra ldflags] [extra go build args...]; run in the module's directory
  local out=$1 name=$2 pkg=$3 ldflags=${4:-}
  shift 4 2>/dev/null || shift $#
  if [ -x "$out/$name" ]; then echo "[cluster] $name: cached" >&2; return; fi
  local t0=$SECONDS
  echo "[cluster] building $name ($pkg) ..." >&2
  go build -trimpath -ldflags="-s -w $ldflags" "$@" -o "$out/$name.tmp" "$pkg" || return 1
  mv "$out/$name.tmp" "$out/$name" || return 1
  echo "[cluster] built $name in $((SECONDS - t0)) s" >&2
}
build "$dir" etcd ./etcd
build "$dir" kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "$k8sflags"
build "$dir" kwok sigs.k8s.io/kwok/cmd/kwok
build "$dir" kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler "$k8sflags"
build "$dir" kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager "$k8sflags"
# Not needed by the cluster; for tests and for exploring it without a kubectl of your own.
build "$dir" kubectl k8s.io/kubernetes/cmd/kubectl "$k8sflags"
# helm, for the tests of the operator's Helm chart (helm.sh/helm/v4, from its own wrapper module
# tools/helm so its k8s.io versions stay apart); a version stamp rebuilds it when tools/helm/go.mod
# names another. Its failure fails only the Helm chart tests.
helmver=$(modver helm.sh/helm/v4 tools/helm/go.mod)
if [ "$(cat "$dir/helm.version" 2>/dev/null)" != "$helmver" ]; then rm -f "$dir/helm"; fi
if (cd tools/helm && build "$dir" helm helm.sh/helm/v4/cmd/helm "-X helm.sh/helm/v4/internal/version.version=$helmver"); then
  echo "$helmver" > "$dir/helm.version"
else
  echo "[cluster] helm $helmver could not be built: the Helm chart tests will fail" >&2
fi

# The real node. Its failure leaves the kwok-only cluster usable, so it does not fail this script
# (a function called in a condition runs without `set -e`: every step checks its own status).
node_build() {
  build "$dir" kubelet k8s.io/kubernetes/cmd/kubelet "$k8sflags" || return 1
  build "$dir" kube-proxy k8s.io/kubernetes/cmd/kube-proxy "$k8sflags" || return 1
  local ctd runc coredns knp msv ndir
  ctd=$(modver github.com/containerd/containerd/v2 node/containerd/go.mod)
  runc=$(modver github.com/opencontainers/runc node/runc/go.mod)
  coredns=$(modver github.com/coredns/coredns node/coredns/go.mod)
  knp=$(modver sigs.k8s.io/kube-network-policies node/netpol/go.mod)
  msv=$(modver sigs.k8s.io/metrics-server node/metrics-server/go.mod)
  ndir=$cache/node-containerd$ctd-runc$runc-coredns$coredns
  mkdir -p "$ndir" || return 1
  local cpkg=github.com/containerd/containerd/v2
  local ctdflags="-X $cpkg/version.Version=$ctd -X $cpkg/version.Package=github.com/containerd/containerd/v2"
  cd "$here/node/containerd" || return 1
  build "$ndir" containerd $cpkg/cmd/containerd "$ctdflags" -tags no_btrfs,no_devmapper,no_zfs || return 1
  build "$ndir" containerd-shim-runc-v2 $cpkg/cmd/containerd-shim-runc-v2 "$ctdflags" || return 1
  build "$ndir" ctr $cpkg/cmd/ctr "$ctdflags" -tags no_btrfs,no_devmapper,no_zfs || return 1
  cd "$here/node/coredns" || return 1
  build "$ndir" coredns github.com/coredns/coredns || return 1
  # NetworkPolicy enforcement (nftables + nfqueue over netlink: pure Go). Its version is kept in a
  # stamp file, so a node dir built before it (or with another version) gains it alone.
  # Built from a patched copy of its module (go build -modfile with a replace; files of the module
  # cache cannot be overlaid): its queue verdict through the xtables NFQUEUE target
  # (node/netpol/nfqueue_xt.go.in), as this kernel has no nftables queue expression (CONFIG_NFT_QUEUE).
  cd "$here/node/netpol" || return 1
  local stamp="$knp+xt-nfqueue-1"
  if [ "$(cat "$ndir/kube-network-policies.version" 2>/dev/null)" != "$stamp" ]; then rm -f "$ndir/kube-network-policies"; fi
  if [ ! -x "$ndir/kube-network-policies" ]; then
    local src ov
    # `go list -m` names the module's directory only once it is in the module cache (a fresh machine has none).
    go mod download sigs.k8s.io/kube-network-policies || return 1
    src=$(go list -m -f '{{.Dir}}' sigs.k8s.io/kube-network-policies) || return 1
    if [ -z "$src" ] || [ ! -d "$src" ]; then
      echo "[cluster] kube-network-policies $knp: not in the module cache after go mod download" >&2
      return 1
    fi
    ov=$(mktemp -d) || return 1
    cp -r "$src" "$ov/knp" && chmod -R u+w "$ov/knp" || return 1
    perl -0pi -e 's/queue := &expr\.Queue\{Num: uint16\(c\.config\.QueueID\)\}\n\tif c\.config\.FailOpen \{\n\t\tqueue\.Flag = expr\.QueueFlagBypass\n\t\}/queue := nfqueueTarget(uint16(c.config.QueueID), c.config.FailOpen)/g' \
      "$ov/knp/pkg/networkpolicy/controller.go" || return 1
    if [ "$(grep -c 'nfqueueTarget(' "$ov/knp/pkg/networkpolicy/controller.go")" != 2 ]; then
      echo "[cluster] kube-network-policies $knp: the NFQUEUE patch no longer applies to controller.go" >&2
      return 1
    fi
    cp "$here/node/netpol/nfqueue_xt.go.in" "$ov/knp/pkg/networkpolicy/nfqueue_xt.go" || return 1
    { cat go.mod; echo "replace sigs.k8s.io/kube-network-policies => $ov/knp"; } > "$ov/go.mod" || return 1
    cp go.sum "$ov/go.sum" || return 1
    build "$ndir" kube-network-policies sigs.k8s.io/kube-network-policies/cmd "" -modfile "$ov/go.mod" || return 1
    rm -rf "$ov"
  fi
  echo "$stamp" > "$ndir/kube-network-policies.version" || return 1
  # metrics-server: the metrics.k8s.io API of the real node (a host process the cluster starts,
  # components/metrics-server.ts), unpatched from its wrapper module node/metrics-server. Its
  # version is kept in a stamp file, so a node dir built before it (or with another version) gains
  # it alone. Its failure leaves the node without metrics.k8s.io (`top` has nothing to show), not
  # without the node.
  cd "$here/node/metrics-server" || return 1
  if [ "$(cat "$ndir/metrics-server.version" 2>/dev/null)" != "$msv" ]; then rm -f "$ndir/metrics-server"; fi
  local vpkgc=k8s.io/client-go/pkg/version # as upstream's Makefile sets it
  if build "$ndir" metrics-server sigs.k8s.io/metrics-server/cmd/metrics-server \
    "-X $vpkgc.gitVersion=$msv -X $vpkgc.gitTreeState=clean"; then
    echo "$msv" > "$ndir/metrics-server.version" || return 1
  else
    echo "[cluster] metrics-server $msv could not be built: the cluster will not serve metrics.k8s.io" >&2
  fi
  cd "$here/node/runc" || return 1
  if [ ! -x "$ndir/runc" ] && ! pkg-config --exists libseccomp 2>/dev/null; then
    echo "[cluster] runc needs cgo with libseccomp: apt-get install -y $(sed "s/#.*//" "$here/debian-packages.txt" | xargs)" >&2
    return 1
  fi
  CGO_ENABLED=1 build "$ndir" runc github.com/opencontainers/runc "-X main.version=${runc#v}" -tags seccomp || return 1
  cd "$here" || return 1
  echo "node $ndir"
}
if [ "${KUBEMCP_NO_REAL_NODE:-}" = 1 ]; then
  echo "[cluster] KUBEMCP_NO_REAL_NODE=1: not building the real node" >&2
elif ! (node_build); then
  echo "[cluster] the real node's binaries could not be built (see above); the cluster will run kwok's node only" >&2
fi
echo "[cluster] binaries ready in $((SECONDS - t_all)) s" >&2
echo "$dir"
