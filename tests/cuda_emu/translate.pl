#!/usr/bin/perl
# Rewrites a .cu file into C++ for the CUDA emulator (see cuda_runtime.h beside this file):
#   kernel<<<grid, block[, shared[, stream]]>>>(args);  ->  EmuLaunch(grid, block...).run(id, body);
#     body: a closure holding the arguments' values at the launch (as the driver copies them), which calls kernel
#     with them when the launch runs: at once, or at each replay of a captured graph
#   extern __shared__ [__align__(N)] T name[];         ->  T *name = (T *)emu_dynamic_shared();  (128-byte aligned)
# id is the kernel's address when the launch names dynamic shared memory (so cudaFuncSetAttribute applies; such a
# launch must name one function, e.g. kernel<E>), otherwise nullptr.
# Usage: translate.pl in.cu > out.cpp
use strict;
use warnings;

local $/;
my $file = $ARGV[0];
my $src = <>;
my $paren;
$paren = qr/\((?:[^()]++|(??{$paren}))*\)/;

sub config_args {
    my ($cfg) = @_;
    my ($depth, $n) = (0, 1);
    for my $c (split //, $cfg) {
        $depth++ if $c eq '(' || $c eq '<';
        $depth-- if $c eq ')' || $c eq '>';
        $n++ if $c eq ',' && $depth == 0;
    }
    return $n;
}

sub launch {
    my ($kernel, $cfg, $args) = @_;
    my $id = config_args($cfg) >= 3 ? "(const void *)&$kernel" : "nullptr";
    return "EmuLaunch($cfg).run($id, [emu_args = std::make_tuple$args]() "
         . "{ std::apply([](auto... a) { $kernel(a...); }, emu_args); })";
}

$src =~ s/([A-Za-z_]\w*(?:<[^<>;()]*>)?)\s*<<<(.*?)>>>\s*($paren)/launch($1, $2, $3)/gse;
$src =~ s/(extern\s+__shared__\s+)__align__\(\d+\)\s*/$1/g;
$src =~ s/extern\s+__shared__\s+([\w\s]+?)\s*(\w+)\s*\[\s*\]\s*;/$1 *$2 = ($1 *)emu_dynamic_shared();/g;
die "translate.pl: a kernel launch was left untranslated\n" if $src =~ /<<</;
print "#line 1 \"$file\"\n$src";
