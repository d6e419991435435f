#!/usr/bin/env bash
# Build KenLM's lmplz (n-gram estimation, modified Kneser-Ney) and build_binary from source, offline
# apart from the package registries, and put them next to the virtualenv's python.
#
#   tools/install_kenlm.sh [VENV_BIN]        # default: .venv/bin
#
# Why this route: KenLM is the estimator the decoder's language model format comes from, and the
# `kenlm` source distribution on PyPI carries its whole C++ tree (lmplz included); no other host is
# needed. lmplz links Boost program_options/thread and zlib/bz2/lzma; their Debian dev packages are
# installed with apt-get when missing and we are root (CI and these machines are), otherwise the
# script stops and names the packages to install. The build (about a minute on 2 cores) is cached in
# $ASR_KENLM_CACHE (default ~/.cache/asr/kenlm-0.3.0), so a new virtualenv only copies two files.
set -euo pipefail
version=0.3.0
venv_bin="${1:-.venv/bin}"
cache="${ASR_KENLM_CACHE:-$HOME/.cache/asr/kenlm-$version}"
python="$venv_bin/python"
[ -x "$python" ] || python="$(command -v python3)"

if [ -x "$venv_bin/lmplz" ] && [ -x "$venv_bin/build_binary" ]; then
  echo "kenlm: lmplz and build_binary already in $venv_bin"
  exit 0
fi

if [ ! -x "$cache/bin/lmplz" ] || [ ! -x "$cache/bin/build_binary" ]; then
  debs=(build-essential cmake libboost-program-options-dev libboost-system-dev libboost-thread-dev
        libboost-test-dev zlib1g-dev libbz2-dev liblzma-dev)
  missing=()
  for d in "${debs[@]}"; do
    dpkg-query -W -f='${Status}' "$d" 2>/dev/null | grep -q "ok installed" || missing+=("$d")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
      echo "kenlm: installing build dependencies: ${missing[*]}"
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
      echo "error: lmplz needs these Debian packages: ${missing[*]} (run: sudo apt-get install ${missing[*]})" >&2
      exit 1
    fi
  fi
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  # --no-binary kenlm fetches the source distribution; --no-build-isolation and --no-deps stop pip from
  # building a metadata environment (which would compile cmake from source); pip still reads the
  # sdist's metadata with the local setuptools, which needs the wheel package.
  "$python" -m pip install --quiet wheel
  "$python" -m pip download --quiet "kenlm==$version" --no-binary kenlm --no-deps --no-build-isolation -d "$work"
  tar -xzf "$work"/kenlm-"$version".tar.gz -C "$work"
  src="$work/kenlm-$version"
  cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DKENLM_MAX_ORDER=6 >"$work/cmake.log" 2>&1 ||
    { tail -20 "$work/cmake.log" >&2; echo "error: cmake failed for kenlm $version" >&2; exit 1; }
  make -C "$work/build" -j"$(nproc)" lmplz build_binary >"$work/make.log" 2>&1 ||
    { tail -20 "$work/make.log" >&2; echo "error: building lmplz failed (log above)" >&2; exit 1; }
  mkdir -p "$cache/bin.tmp"
  cp "$work/build/bin/lmplz" "$work/build/bin/build_binary" "$cache/bin.tmp/"
  rm -rf "$cache/bin" && mv "$cache/bin.tmp" "$cache/bin"  # the cache is complete or absent
fi
mkdir -p "$venv_bin"
cp "$cache/bin/lmplz" "$cache/bin/build_binary" "$venv_bin/"
echo "kenlm: lmplz and build_binary installed in $venv_bin (built in $cache)"
