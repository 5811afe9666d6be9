# Sourced by build.sh, sanitize.sh and fuzz.sh (with $root set): the arguments every
# configure of porthole shares, in the array cmake_args.
# - Ninja where it is installed.
# - ccache where it is installed, with paths taken relative to the checkout
#   (CCACHE_BASEDIR) and the build directory left out of the hash (CCACHE_NOHASHDIR), so
#   a fresh clone in another folder reuses what an earlier build compiled. ccache hashes
#   the compiler, its flags and every header read, so a hit is the object a compile
#   would have made.
cmake_args=()
command -v ninja >/dev/null && cmake_args+=(-G Ninja)
if command -v ccache >/dev/null; then
  cmake_args+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  export CCACHE_BASEDIR=$root CCACHE_NOHASHDIR=1
fi
