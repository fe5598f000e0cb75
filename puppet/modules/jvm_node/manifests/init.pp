# @summary A node of a PyScaler cluster: one JVM service with JMX remote on
#   the port PyScaler's JVM record of the cluster expects.
#
# JMX remote runs code in the JVM, so the role never serves it open: a
# password is required (the files PyScaler copies for the run, installed
# readable by the JVM's user only), the connector and the RMI registry speak
# TLS with a key pair made on the node, they listen on one address only, and
# the JVM runs as its own system user, not root.
#
# The service is managed with Puppet's "base" provider through a small
# control script (bin/jvmctl), so the role works on nodes without systemd
# (containers, the test nodes) as well as on full VMs. Changing the JVM's
# options, its JMX files or its code restarts it.
#
# @param base_dir       where the JVM's code, options, pid file and log live
# @param jmx_port       JMX remote (and RMI) port: the cluster's JVM record's port
# @param jmx_host       the one address the JMX agent binds to
# @param rmi_hostname   address JMX clients are told to reconnect to; undef: Java's choice
# @param jmx_secrets_dir  directory holding jmxremote.password and jmxremote.access
#   for this run (PyScaler copies them there over SFTP, mode 0600; never facts)
# @param jvm_user       system user (and group) the JVM runs as; created here
# @param heap           initial and maximum heap
# @param extra_options  further JVM options, one per element (no spaces inside)
# @param java           the java binary
# @param javac          the javac binary, used to compile the service's class on the node
# @param keytool        the keytool binary, which makes the JMX key pair
# @param service_name   Puppet's name for the service
# @param netns          network namespace file the JVM is started in (set by
#   PyScaler when Puppet runs sealed in a loopback-only namespace); '' = Puppet's own
# @param start_timeout  seconds jvmctl waits for the JVM (and its JMX agent) to come up
class jvm_node (
  Pattern[/\A\/[^\s'"]*\z/] $base_dir = '/opt/pyscaler-jvm',
  Integer[1, 65535] $jmx_port = 9010,
  Pattern[/\A[0-9A-Za-z.:-]+\z/] $jmx_host,
  Pattern[/\A\/[^\s'"]*\z/] $jmx_secrets_dir,
  Optional[Pattern[/\A[0-9A-Za-z.:-]+\z/]] $rmi_hostname = undef,
  Pattern[/\A[a-z_][a-z0-9_-]*\z/] $jvm_user = 'pyscaler-jvm',
  Pattern[/\A[0-9]+[kmg]\z/] $heap = '64m',
  Array[Pattern[/\A\S+\z/]] $extra_options = [],
  Pattern[/\A\/\S+\z/] $java = '/usr/bin/java',
  Pattern[/\A\/\S+\z/] $javac = '/usr/bin/javac',
  Pattern[/\A\/\S+\z/] $keytool = '/usr/bin/keytool',
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

  $tls_dir = "${base_dir}/tls"
  $password_file = "${base_dir}/conf/jmxremote.password"
  $access_file = "${base_dir}/conf/jmxremote.access"
  $management_config = "${base_dir}/conf/management.properties"

  group { $jvm_user:
    ensure => present,
    system => true,
  }

  user { $jvm_user:
    ensure     => present,
    system     => true,
    gid        => $jvm_user,
    home       => $base_dir,
    managehome => false,
    shell      => '/usr/sbin/nologin',
    comment    => 'PyScaler node JVM',
    require    => Group[$jvm_user],
  }

  file { [$base_dir, "${base_dir}/bin", "${base_dir}/conf", "${base_dir}/src", "${base_dir}/lib"]:
    ensure => directory,
    owner  => 'root',
    mode   => '0755',
  }

  # Written by the JVM (pid file) and by bin/jmx-keystore, both as the JVM's user.
  file { ["${base_dir}/run", "${base_dir}/log", $tls_dir]:
    ensure  => directory,
    owner   => $jvm_user,
    group   => $jvm_user,
    mode    => '0755',
    require => User[$jvm_user],
  }

  # The password and access files PyScaler copied for this run: their
  # content never appears in Puppet's output (no diff, no backup copy).
  file { $password_file:
    ensure    => file,
    source    => "${jmx_secrets_dir}/jmxremote.password",
    owner     => $jvm_user,
    group     => $jvm_user,
    mode      => '0400',
    show_diff => false,
    backup    => false,
    require   => User[$jvm_user],
  }

  file { $access_file:
    ensure    => file,
    source    => "${jmx_secrets_dir}/jmxremote.access",
    owner     => $jvm_user,
    group     => $jvm_user,
    mode      => '0400',
    show_diff => false,
    backup    => false,
    require   => User[$jvm_user],
  }

  file { $management_config:
    ensure  => file,
    owner   => $jvm_user,
    group   => $jvm_user,
    mode    => '0600',
    content => epp('jvm_node/management.properties.epp', {
      password_file   => $password_file,
      access_file     => $access_file,
      ssl_config_file => "${tls_dir}/ssl.properties",
    }),
    require => User[$jvm_user],
  }

  file { "${base_dir}/bin/jmx-keystore":
    ensure  => file,
    mode    => '0755',
    content => epp('jvm_node/jmx-keystore.sh.epp', {
      tls_dir     => $tls_dir,
      keytool     => $keytool,
      common_name => $jmx_host,
    }),
  }

  # The key pair is made once; delete ${tls_dir}/keystore.p12 for a new one.
  exec { "${service_name}: JMX key pair":
    command   => "${base_dir}/bin/jmx-keystore",
    creates   => "${tls_dir}/keystore.p12",
    user      => $jvm_user,
    group     => $jvm_user,
    cwd       => $tls_dir,
    path      => ['/usr/bin', '/bin'],
    timeout   => 120,
    logoutput => on_failure,
    require   => File["${base_dir}/bin/jmx-keystore", $tls_dir],
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
      management_config => $management_config,
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
      jvm_user      => $jvm_user,
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
    require   => File["${base_dir}/run", "${base_dir}/log"],
    subscribe => [File["${base_dir}/conf/jvm.options", $ctl, $password_file, $access_file, $management_config],
                  Exec["${service_name}: compile ${main_class}", "${service_name}: JMX key pair"]],
  }
}
