# A small build graph for a fleet of remote builders, needing no nixpkgs: every builder is
# the host's /bin/sh with coreutils, which the builders' sandbox exposes (sandbox-paths
# /bin /usr /lib /lib64, as scripts/fleet sets up).
#
#   greeting, numbers          leaves
#   report                     depends on both
#   parallel                   depends on report; requires the `big-parallel` feature
#                              (in scripts/fleet only builder2 offers it)
#   unbuildable.exotic         a leaf for a system no machine of the fleet has
#
#   nix-instantiate examples/fleet.nix -A report
#   nix-bridge build -j0 --builders @FLEET/machines examples/fleet.nix
#
# Building the whole file builds greeting, numbers, report and parallel; exotic is kept out
# of that default set (nothing can build it) and named with -A unbuildable.exotic.
{ system ? builtins.currentSystem
# A system no builder offers, for `exotic`.
, exoticSystem ? (if system == "riscv64-linux" then "mips64el-linux" else "riscv64-linux")
}:
let
  # A derivation whose builder is /bin/sh running `script` (with `set -eu`); Nix sets no
  # PATH in a build, so give it the host's coreutils.
  sh = name: attrs: script: derivation ({
    inherit name system;
    builder = "/bin/sh";
    PATH = "/usr/bin:/bin";
    args = [ "-c" "set -eu\n${script}" ];
  } // attrs);

  greeting = sh "fleet-greeting" { } ''
    echo "hello from a remote builder" > $out
  '';

  numbers = sh "fleet-numbers" { } ''
    i=1
    while [ $i -le 100 ]; do echo $i; i=$((i + 1)); done > $out
  '';

  report = sh "fleet-report" { inherit greeting numbers; } ''
    mkdir $out
    cp $greeting $out/greeting
    sum=0
    while read -r n; do sum=$((sum + n)); done < $numbers
    echo "sum of $(wc -l < $numbers) numbers: $sum" > $out/summary
  '';

  parallel = sh "fleet-parallel" {
    inherit report;
    requiredSystemFeatures = [ "big-parallel" ];
  } ''
    mkdir $out
    # Split the work as a big-parallel job would; nproc is what the builder gives us.
    echo "cores seen by the builder: $(nproc)" > $out/cores
    for part in 1 2 3 4; do
      (sleep 0.1; echo "part $part of 4 done") > $out/part-$part &
    done
    wait
    cat $report/summary $out/part-* > $out/result
  '';

  exotic = sh "fleet-exotic" { system = exoticSystem; } ''
    echo "this needs a ${exoticSystem} machine" > $out
  '';
in {
  inherit greeting numbers report parallel;
  # Not built by default (nix-build does not descend into this set): no machine of the fleet
  # can build it, see `nix-bridge explain`. Name it with -A unbuildable.exotic.
  unbuildable = { inherit exotic; };
}
