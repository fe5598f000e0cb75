# @summary A node of a PyScaler cluster: one JVM service with JMX remote on
#   the port PyScaler's JVM record of the cluster expects.
#
# The service is managed with Puppet's "base" provider through a small
# control script (bin/jvmctl), so the role works on nodes without systemd
# (containers, the test nodes) as well as on full VMs. Changing the JVM's
# options or its code restarts it.
#
# @param base_dir       where the JVM's code, options, pid file and log live
# @param jmx_port       JMX remote (and RMI) port: the cluster's JVM record's port
# @param jmx_host       address the JMX agent binds to; undef: all addresses
# @param rmi_hostname   address JMX clients are told to reconnect to; undef: Java's choice
# @param jmx_password_file  if set, JMX requires authentication with this password file
# @param jmx_access_file    access file used with jmx_password_file
# @param heap           initial and maximum heap
# @param extra_options  further JVM options, one per element (no spaces inside)
# @param java           the java binary
# @param javac          the javac binary, used to compile the service's class on the node
# @param service_name   Puppet's name for the service
# @param netns          network namespace file the JVM is started in (set by
#   PyScaler when Puppet runs sealed in a loopback-only namespace); '' = Puppet's own
# @param start_timeout  seconds jvmctl waits for the JVM (and its JMX agent) to come up
class jvm_node (
  Pattern[/\A\/[^\s'"]*\z/] $base_dir = '/opt/pyscaler-jvm',
  Integer[1, 65535] $jmx_port = 9010,
  Optional[Pattern[/\A[0-9A-Za-z.:-]+\z/]] $jmx_host = undef,
  Optional[Pattern[/\A[0-9A-Za-z.:-]+\z/]] $rmi_hostname = undef,
  Optional[Pattern[/\A\/\S+\z/]] $jmx_password_file = undef,
  Optional[Pattern[/\A\/\S+\z/]] $jmx_access_file = undef,
  Pattern[/\A[0-9]+[kmg]\z/] $heap = '64m',
  Array[Pattern[/\A\S+\z/]] $extra_options = [],
  Pattern[/\A\/\S+\z/] $java = '/usr/bin/java',
  Pattern[/\A\/\S+\z/] $javac = '/usr/bin/javac',
  String[1] $service_name = 'pyscaler-jvm',
  Pattern[/\A(\/\S+)?\z/] $netns = '',
  Integer[1] $start_timeout = 60,
) {
  $ctl = "${base_dir}/bin/jvmctl"
  $run_ctl = $netns ? {
    ''      => $ctl,
    default => "/usr/bin/env PYSCALER_JVM_NETNS=${netns} ${ctl}",
  }
  $main_class = 'PyScalerNode'

  file { [$base_dir, "${base_dir}/bin", "${base_dir}/conf", "${base_dir}/src", "${base_dir}/lib",
          "${base_dir}/run", "${base_dir}/log"]:
    ensure => directory,
    mode   => '0755',
  }

  file { "${base_dir}/src/${main_class}.java":
    ensure => file,
    mode   => '0644',
    source => "puppet:///modules/jvm_node/${main_class}.java",
  }

  # Compile on the node whenever the source is newer than the class.
  exec { "${service_name}: compile ${main_class}":
    command   => "${javac} -d ${base_dir}/lib ${base_dir}/src/${main_class}.java",
    unless    => "/usr/bin/test ${base_dir}/lib/${main_class}.class -nt ${base_dir}/src/${main_class}.java",
    path      => ['/usr/bin', '/bin'],
    timeout   => 120,
    logoutput => on_failure,
    require   => File["${base_dir}/src/${main_class}.java", "${base_dir}/lib"],
  }

  file { "${base_dir}/conf/jvm.options":
    ensure  => file,
    mode    => '0644',
    content => epp('jvm_node/jvm.options.epp', {
      jmx_port          => $jmx_port,
      jmx_host          => $jmx_host,
      rmi_hostname      => $rmi_hostname,
      jmx_password_file => $jmx_password_file,
      jmx_access_file   => $jmx_access_file,
      heap              => $heap,
      extra_options     => $extra_options,
    }),
  }

  file { $ctl:
    ensure  => file,
    mode    => '0755',
    content => epp('jvm_node/jvmctl.sh.epp', {
      service_name  => $service_name,
      base_dir      => $base_dir,
      java          => $java,
      main_class    => $main_class,
      start_timeout => $start_timeout,
      stop_timeout  => 20,
    }),
  }

  service { $service_name:
    ensure    => running,
    provider  => base,
    start     => "${run_ctl} start",
    stop      => "${ctl} stop",
    restart   => "${run_ctl} restart",
    status    => "${ctl} status",
    hasstatus => true,
    subscribe => [File["${base_dir}/conf/jvm.options", $ctl], Exec["${service_name}: compile ${main_class}"]],
  }
}
