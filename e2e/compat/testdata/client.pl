#!/usr/bin/perl
# The original orphand's Perl client, rewritten for orphand's tests from
# the daemon's wire format (orphand.h), with core Perl only: a stream Unix
# socket ($ORPHAND_SOCKET, default /tmp/orphand.sock) carrying 12-byte
# records, three unsigned 32-bit integers in host byte order -- parent,
# child, action (1 REGISTER: kill child when parent dies; 2 UNREGISTER:
# forget that pair; 3 PING: echoed).
#
#   client.pl spawn N       fork N children (each sleeps), register them
#                           all on one connection, PING, print
#                           "ready PID CHILD...", then wait to be killed
#                           (the original example: spawn children, then
#                           die). SIGCHLD is ignored: a child that dies is
#                           reaped by the kernel, and never unregistered.
#   client.pl ping          PING and print "pong" once echoed
#   client.pl register P C  send one REGISTER naming P and C ("self": this
#                           process), then PING, and print "sent"
#   client.pl unregister P C
use strict;
use warnings;
use IO::Socket::UNIX;
use Socket qw(SOCK_STREAM);
use POSIX ();

use constant { REGISTER => 1, UNREGISTER => 2, PING => 3, RECORD => 12 };

my $path = $ENV{ORPHAND_SOCKET} || '/tmp/orphand.sock';

sub connect_orphand {
	my $s = IO::Socket::UNIX->new(Type => SOCK_STREAM, Peer => $path)
		or die "client.pl: cannot connect to $path: $!\n";
	$s->autoflush(1);
	return $s;
}

# 'L' packs an unsigned 32-bit integer in the machine's byte order.
sub record { return pack('LLL', @_) }

sub send_record {
	my ($s, @fields) = @_;
	print {$s} record(@fields) or die "client.pl: write: $!\n";
}

# ping sends a PING and waits for its echo: the daemon has then handled
# every record sent before it on this connection.
sub ping {
	my ($s) = @_;
	my $rec = record($$, 0, PING);
	send_record($s, $$, 0, PING);
	my $got = '';
	while (length($got) < RECORD) {
		my $n = sysread($s, $got, RECORD - length($got), length($got));
		die "client.pl: no PING echo: " . (defined $n ? 'end of stream' : $!) . "\n" unless $n;
	}
	die "client.pl: PING echoed wrong\n" unless $got eq $rec;
}

my $cmd = shift @ARGV // '';
if ($cmd eq 'spawn') {
	my $n = shift @ARGV or die "usage: client.pl spawn N\n";
	$SIG{CHLD} = 'IGNORE';
	my @kids;
	for (1 .. $n) {
		my $pid = fork() // die "client.pl: fork: $!\n";
		if ($pid == 0) {
			exec('sleep', '1000') or POSIX::_exit(3);
		}
		push @kids, $pid;
	}
	my $s = connect_orphand();
	send_record($s, $$, $_, REGISTER) for @kids;
	ping($s);
	close($s);
	$| = 1;
	print "ready $$ @kids\n";
	sleep 1000 while 1;
} elsif ($cmd eq 'ping') {
	my $s = connect_orphand();
	ping($s);
	print "pong\n";
} elsif ($cmd eq 'register' || $cmd eq 'unregister') {
	my ($parent, $child) = @ARGV;
	die "usage: client.pl $cmd PARENT CHILD\n" unless defined $child;
	$_ = $_ eq 'self' ? $$ : $_ for $parent, $child;
	my $s = connect_orphand();
	send_record($s, $parent, $child, $cmd eq 'register' ? REGISTER : UNREGISTER);
	ping($s);
	print "sent\n";
} else {
	die "usage: client.pl spawn N | ping | register P C | unregister P C\n";
}
