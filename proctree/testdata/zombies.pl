#!/usr/bin/perl
# zombies.pl BATCHES SIZE: run under a PID 1 being measured, in its own pid
# namespace with its own /proc. Each batch: a batcher forks SIZE children
# that exit at once, waits until all have exited (EOF on a pipe they held),
# then exits itself, so SIZE zombies are orphaned onto PID 1 together. The
# generator then times until every one of them is reaped (kill 0 fails with
# ESRCH), and reads PID 1's CPU time around it. Last line of output:
#   zombies=N drain_s=S pid1_cpu_ticks=T pid1_rss_kb=R pid1_hwm_kb=H pid1_anon_kb=A pid1_file_kb=F
use strict;
use warnings;
use POSIX ();
use Time::HiRes qw(time);

my ($batches, $size) = @ARGV;
die "usage: zombies.pl BATCHES SIZE\n" unless $batches && $size;

sub pid1_cpu {
	open my $f, '<', '/proc/1/stat' or die "/proc/1/stat: $!";
	my $s = <$f>;
	$s =~ s/^.*\) //;    # the fields after comm start at field 3
	my @f = split ' ', $s;
	return $f[11] + $f[12];    # utime (14) + stime (15)
}

my ($zombies, $drain, $cpu) = (0, 0, 0);
for my $b (1 .. $batches) {
	pipe(my $r, my $w) or die "pipe: $!";
	my $batcher = fork // die "fork: $!";
	if (!$batcher) {
		close $r;
		pipe(my $er, my $ew) or die "pipe: $!";
		my @kids;
		for (1 .. $size) {
			my $k = fork // die "fork: $!";
			POSIX::_exit(0) if !$k;
			push @kids, $k;
		}
		close $ew;
		my $eof = <$er>;    # every child has exited
		print $w join(' ', @kids), "\n";
		close $w;
		POSIX::_exit(0);    # orphans SIZE zombies onto PID 1
	}
	close $w;
	my @kids = split ' ', scalar <$r>;
	waitpid($batcher, 0);
	my ($t0, $c0) = (time, pid1_cpu());
	for my $k (@kids) {
		1 while kill 0, $k;
	}
	my ($t1, $c1) = (time, pid1_cpu());
	$zombies += @kids;
	$drain += $t1 - $t0;
	$cpu += $c1 - $c0;
}
my %m;
open my $st, '<', '/proc/1/status' or die "/proc/1/status: $!";
while (<$st>) { $m{$1} = $2 if /^(VmRSS|VmHWM|RssAnon|RssFile):\s+(\d+)/ }
printf "zombies=%d drain_s=%.6f pid1_cpu_ticks=%d pid1_rss_kb=%d pid1_hwm_kb=%d pid1_anon_kb=%d pid1_file_kb=%d\n",
	$zombies, $drain, $cpu, $m{VmRSS}, $m{VmHWM}, $m{RssAnon}, $m{RssFile};
