# @summary Packages, user, directories, the release link and the virtualenv.
#
# pip runs when requirements.txt or constraints.txt differ from the copy it left in the
# virtualenv after its last successful run (a failed run is retried next time).
class pyscaler::install {
  $app_dir    = $pyscaler::app_dir
  $venv_dir   = $pyscaler::venv_dir
  $static_dir = $pyscaler::static_dir
  $state_dir  = $pyscaler::state_dir
  $user       = $pyscaler::user

  if $pyscaler::manage_packages {
    # Build tools for mysqlclient; a JRE for JMX collection (jpype); ssh for
    # the nodes. psycopg comes as a binary wheel.
    $base_packages = ['python3', 'python3-venv', 'python3-dev', 'build-essential', 'pkg-config',
                      'default-libmysqlclient-dev', 'openjdk-17-jre-headless', 'openssh-client']
    # Web hosts build the console's static files (npm ci) and, with
    # manage_nginx, serve them.
    $web_packages = 'web' in $pyscaler::roles ? {
      true    => $pyscaler::node_packages + ($pyscaler::manage_nginx ? { true => ['nginx'], default => [] }),
      default => [],
    }
    package { $base_packages + $web_packages:
      ensure => installed,
      before => Exec['pyscaler: virtualenv'],
    }
  }

  group { $user:
    ensure => present,
    system => true,
  }

  user { $user:
    ensure     => present,
    system     => true,
    gid        => $user,
    home       => $state_dir,
    shell      => '/usr/sbin/nologin',
    managehome => false,
    comment    => 'PyScaler services',
  }

  file { $state_dir:
    ensure => directory,
    owner  => $user,
    group  => $user,
    mode   => '0750',
  }

  # SSH_KNOWN_HOSTS lives here; the key in SSH_KEY_PATH is placed by the operator.
  file { "${state_dir}/.ssh":
    ensure => directory,
    owner  => $user,
    group  => $user,
    mode   => '0700',
  }

  file { $pyscaler::base_dir:
    ensure => directory,
    owner  => 'root',
    group  => 'root',
    mode   => '0755',
  }

  file { $app_dir:
    ensure => link,
    target => $pyscaler::source_dir,
  }

  # nginx (www-data) reads it: world-readable, written by the pyscaler user.
  file { $static_dir:
    ensure => directory,
    owner  => $user,
    group  => $user,
    mode   => '0755',
  }

  exec { 'pyscaler: virtualenv':
    command => "/usr/bin/python3 -m venv ${venv_dir}",
    creates => "${venv_dir}/bin/python",
    require => File[$pyscaler::base_dir],
  }

  $stamp = "${venv_dir}/.pyscaler-requirements.txt"
  exec { 'pyscaler: pip install requirements':
    command   => "${venv_dir}/bin/pip install --no-input --disable-pip-version-check ${pyscaler::pip_options} -r ${app_dir}/requirements.txt -c ${app_dir}/constraints.txt && /bin/cat ${app_dir}/requirements.txt ${app_dir}/constraints.txt > ${stamp}",
    unless    => "/bin/cat ${app_dir}/requirements.txt ${app_dir}/constraints.txt | /usr/bin/cmp -s - ${stamp}",
    provider  => shell,
    timeout   => 1800,
    logoutput => on_failure,
    require   => [Exec['pyscaler: virtualenv'], File[$app_dir]],
  }
}
