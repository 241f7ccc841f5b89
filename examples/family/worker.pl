#!/usr/bin/perl
# A family worker in Perl, core modules only: the other-language side of
# examples/family. It speaks the wire format of docs/family-protocol.md in
# both directions:
#
#   as a child:  says hello to the master in $ORPHAND_FAMILY, sends the
#                path of its own inbox, then progress (pushes) and a result;
#   as a master: listens on a Unix socket in a private 0700 directory,
#                checks the peer's uid (SO_PEERCRED), answers hello with a
#                welcome, and gathers the values it is sent (here: a task).
#
# The inbox takes one connection and sets no deadlines: a long-lived
# master would also want the Go one's hello and stall timeouts.
use strict;
use warnings;
use File::Temp qw(tempdir);
use IO::Socket::UNIX;
use JSON::PP qw(encode_json decode_json);
use Socket qw(SOCK_STREAM SOL_SOCKET SO_PEERCRED);

$SIG{PIPE} = 'IGNORE';    # a refused write must return an error, not kill us
alarm 120;                # never outlive a stuck master
my $name = shift // 'perl-worker';

# --- frames: type, reserved 0, key length (n), value length (N), key, value
sub write_frame {
    my ($fh, $type, $key, $value) = @_;
    my $buf = pack('a C n N', $type, 0, length $key, length $value) . $key . $value;
    while (length $buf) {
        my $n = syswrite($fh, $buf) // die "write: $!\n";
        substr($buf, 0, $n, '');
    }
}

sub read_exact {
    my ($fh, $n) = @_;
    my $buf = '';
    while (length $buf < $n) {
        my $got = sysread($fh, $buf, $n - length $buf, length $buf);
        die "read: $!\n" unless defined $got;
        die "stream ended inside a frame\n" if $got == 0 && length $buf;
        return undef if $got == 0;
    }
    return $buf;
}

# Returns (type, key, value), or an empty list at a clean end of stream.
sub read_frame {
    my ($fh) = @_;
    my $hdr = read_exact($fh, 8);
    return () unless defined $hdr;
    my ($type, $reserved, $klen, $vlen) = unpack('a C n N', $hdr);
    die "reserved byte is $reserved\n" if $reserved;
    die "value of $vlen bytes is too large\n" if $vlen > 64 << 20;
    my $key   = $klen ? read_exact($fh, $klen) // die "short key\n"   : '';
    my $value = $vlen ? read_exact($fh, $vlen) // die "short value\n" : '';
    return ($type, $key, $value);
}

# --- child side: hello to our master
my $info = $ENV{ORPHAND_FAMILY} or die "not started by a family master: \$ORPHAND_FAMILY is unset\n";
my $up = IO::Socket::UNIX->new(Type => SOCK_STREAM, Peer => $info)
    or die "connecting to the master at $info: $!\n";
write_frame($up, 'H', $name, 'ofam' . pack('n', 1));
my ($type, $key, $value) = read_frame($up);
die "the master closed the connection\n" unless defined $type;
die "the master refused: $key: $value\n" if $type eq 'E';
die "unexpected answer to hello: $type\n" unless $type eq 'W';
my ($version, $max_key, $max_value, $cid) = unpack('n n N Q>', $value);

# --- master side: our own inbox, for the reply
my $dir  = tempdir('orphand-family-XXXXXXXX', TMPDIR => 1, CLEANUP => 1);    # mode 0700
my $path = "$dir/s";
my $inbox = IO::Socket::UNIX->new(Type => SOCK_STREAM, Local => $path, Listen => 1)
    or die "listening on $path: $!\n";
write_frame($up, 'S', 'inbox', $path);

my $conn = $inbox->accept or die "accept: $!\n";
my (undef, $uid) = unpack('i3', getsockopt($conn, SOL_SOCKET, SO_PEERCRED));
if ($uid != $>) {
    write_frame($conn, 'E', 'permission_denied', "peer uid $uid is not $>");
    die "refused a peer with uid $uid\n";
}
($type, $key, $value) = read_frame($conn);
die "the first frame must be hello\n" unless defined $type && $type eq 'H' && substr($value, 0, 4) eq 'ofam';
write_frame($conn, 'W', '', pack('n n N Q>', 1, 4096, 64 << 20, 0));
my %values;
while (my ($t, $k, $v) = read_frame($conn)) {
    die "unexpected $t frame\n" unless $t eq 'S' || $t eq 'P';
    $values{$k} = $v;    # this inbox keeps the last value of each key
}
my $task = decode_json($values{task} // die "the master sent no task\n");

# --- the work, with progress reports
my @numbers = @{ $task->{numbers} };
my $sum = 0;
for my $i (0 .. $#numbers) {
    $sum += $numbers[$i];
    if (($i + 1) % 50 == 0 || $i == $#numbers) {
        write_frame($up, 'P', 'progress', encode_json({ done => $i + 1, of => scalar @numbers }));
    }
}
write_frame($up, 'S', 'result', encode_json({ worker => $name, lang => 'perl', pid => $$, sum => $sum }));
close $up;
