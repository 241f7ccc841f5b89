#!/usr/bin/perl
# client.pl — the old orphand's example client, done right.
#
# It registers itself with the orphand agent, spawns a few children — one of
# which double-forks a setsid daemon, the kind of escapee the old daemon
# could never catch — and then dies by SIGKILL, leaving no chance to clean
# up. The agent kills every one of them anyway.
#
# Core Perl only (IO::Socket::UNIX, JSON::PP). Protocol v1: one JSON object
# per line over a Unix stream socket; see docs/ and ipc/protocol.go.
#
#   perl examples/client.pl [--socket PATH] [--children N] [--linger SECONDS]
#
# The socket is found as orphanctl finds it: $ORPHAND_SOCKET, else your
# per-user agent's socket ($XDG_RUNTIME_DIR/orphand/orphand.sock) if it
# exists, else the system agent's, /run/orphand/orphand.sock. On stdout it prints one JSON line — the group id and every pid it started —
# so that a test (e2e/) or you can check they are all gone afterwards:
#
#   {"group":"3f9c2a1b7d04","spawner":4242,"children":[4243,4244],"daemon":4250}
use strict;
use warnings;
use Getopt::Long qw(GetOptions);
use IO::Socket::UNIX;
use JSON::PP;
use POSIX qw(setsid _exit);

# find_socket: $ORPHAND_SOCKET, else the caller's own per-user agent's
# socket if it exists, else the system agent's (docs/protocol.md).
sub find_socket {
    return $ENV{ORPHAND_SOCKET} if $ENV{ORPHAND_SOCKET};
    my $runtime = $ENV{XDG_RUNTIME_DIR};
    $runtime = "/run/user/$>" unless defined $runtime && $runtime =~ m{^/};
    my $user = "$runtime/orphand/orphand.sock";
    my @st = lstat $user;
    return $user if @st && -S _ && $st[4] == $>;
    return '/run/orphand/orphand.sock';
}

my $socket   = find_socket();
my $children = 2;
my $linger   = 1;
GetOptions('socket=s' => \$socket, 'children=i' => \$children, 'linger=f' => \$linger)
    or die "usage: $0 [--socket PATH] [--children N] [--linger SECONDS]\n";

my $json = JSON::PP->new->canonical;
my $next_id = 0;

my $conn = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Peer => $socket)
    or die "client.pl: cannot reach orphand at $socket: $! "
         . "(is orphand running? start it with `orphand serve`, or your own with "
         . "`systemctl --user enable --now orphand.socket`, or set ORPHAND_SOCKET)\n";

# request sends one request and returns the response's fields, or dies with
# the agent's error code and message.
sub request {
    my (%req) = @_;
    $req{id} = ++$next_id;
    print {$conn} $json->encode(\%req), "\n" or die "client.pl: send: $!\n";
    my $line = <$conn>;
    defined $line or die "client.pl: the agent closed the connection\n";
    my $resp = $json->decode($line);
    ($resp->{id} // 0) == $req{id} or die "client.pl: response id $resp->{id}, want $req{id}\n";
    if (!$resp->{ok}) {
        die "client.pl: $req{op} refused: $resp->{error}{code}: $resp->{error}{message}\n";
    }
    return $resp;
}

my $hello = request(op => 'hello', version => 1);
print STDERR "client.pl: orphand $hello->{agent} ($hello->{backend} backend)\n";

# No pid: the agent registers the caller, read from the socket's peer
# credentials. The default trigger is our exit.
my $group = request(op => 'register', name => 'client.pl')->{group};
print STDERR "client.pl: registered as group $group->{id}\n";
close $conn;    # the group lives on: on=exit, not on=disconnect

my @kids;
for (1 .. $children) {
    my $pid = fork // die "client.pl: fork: $!\n";
    if ($pid == 0) {
        exec 'sleep', '3600' or _exit(127);
    }
    push @kids, $pid;
}

# The daemon: fork, setsid, fork again, and let the middle process exit, so
# that the daemon has neither a parent nor a session in common with us.
pipe(my $r, my $w) or die "client.pl: pipe: $!\n";
my $mid = fork // die "client.pl: fork: $!\n";
if ($mid == 0) {
    close $r;
    setsid() or _exit(1);
    my $daemon = fork // _exit(1);
    if ($daemon == 0) {
        close $w;
        open STDIN,  '<', '/dev/null';
        open STDOUT, '>', '/dev/null';
        exec 'sleep', '3600' or _exit(127);
    }
    syswrite $w, "$daemon\n";    # unbuffered: _exit does not flush
    _exit(0);
}
close $w;
chomp(my $daemon = <$r> // '');
waitpid($mid, 0);
$daemon =~ /^\d+$/ or die "client.pl: the daemon did not report its pid\n";

$| = 1;
print $json->encode({group => $group->{id}, spawner => $$, children => \@kids, daemon => 0 + $daemon}), "\n";
print STDERR "client.pl: children @kids and daemon $daemon started; dying by SIGKILL in ${linger}s\n";
select(undef, undef, undef, $linger);
kill 'KILL', $$;
