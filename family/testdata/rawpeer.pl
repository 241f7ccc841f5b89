#!/usr/bin/perl
# A raw orphand family peer for tests (core modules only): connects to the
# socket in $ARGV[0], says hello as "raw", and prints the master's answer:
#   "W <cid>"             a welcome
#   "E <code> <message>"  an error frame
#   "connect: <error>"    the socket could not be reached
# With $ARGV[1] eq "orphan" it first forks and lets its parent exit, so
# that the process that connects has been re-parented (not a descendant).
use strict;
use warnings;
use IO::Socket::UNIX;
use Socket qw(SOCK_STREAM);

my ($path, $mode) = @ARGV;
$mode //= '';
alarm 60;
$| = 1;
# The master may refuse before reading the hello: see its answer rather
# than die of SIGPIPE.
$SIG{PIPE} = 'IGNORE';

if ($mode eq 'orphan') {
    my $parent = $$;
    my $pid = fork() // die "fork: $!";
    exit 0 if $pid;
    select(undef, undef, undef, 0.01) while getppid() == $parent;
}

my $s = IO::Socket::UNIX->new(Type => SOCK_STREAM, Peer => $path);
if (!$s) {
    print "connect: $!\n";
    exit 0;
}
my $name = 'raw';
# hello: type, reserved, key length, value length, key, "ofam", version 1
syswrite($s, pack('a C n N a* a4 n', 'H', 0, length $name, 6, $name, 'ofam', 1));

sub readn {
    my ($n) = @_;
    my $buf = '';
    while (length $buf < $n) {
        my $got = sysread($s, $buf, $n - length $buf, length $buf);
        die "read: $!" unless defined $got;
        return undef if $got == 0;
    }
    return $buf;
}

my $hdr = readn(8);
if (!defined $hdr) {
    print "closed\n";
    exit 0;
}
my ($type, undef, $klen, $vlen) = unpack('a C n N', $hdr);
my $key = $klen ? readn($klen) : '';
my $value = $vlen ? readn($vlen) : '';
if ($type eq 'W') {
    my ($version, $maxkey, $maxvalue, $cid) = unpack('n n N Q>', $value);
    print "W $cid\n";
} else {
    print "$type $key $value\n";
}
