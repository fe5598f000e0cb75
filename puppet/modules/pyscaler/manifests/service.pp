# @summary The systemd units of deploy/systemd for this host's roles: installed
#   from the release, enabled and running; the units of other roles stopped,
#   disabled and removed.
#
# The collect role is a template, pyscaler-worker-collect@.service, run as
# instances @1 .. @collect_processes (one collecting process each: node
# affinity is per worker); instances beyond that number are stopped and
# disabled. A new release, new requirements or a changed env file restart the
# services (this class is notified by pyscaler::install and pyscaler::config).
class pyscaler::service {
  $unit_files = {
    'web'     => 'pyscaler-web.service',
    'beat'    => 'pyscaler-beat.service',
    'collect' => 'pyscaler-worker-collect@.service',
    'control' => 'pyscaler-worker-control.service',
    'actions' => 'pyscaler-worker-actions.service',
  }
  $collect_instances = Integer[1, $pyscaler::collect_processes].map |$i| { "pyscaler-worker-collect@${i}.service" }
  $services = $unit_files + { 'collect' => $collect_instances }
  $unit_dir = '/etc/systemd/system'
  $source = "${pyscaler::source_dir}/deploy/systemd"
  $installed = $facts['pyscaler_installed_units'].lest || { [] }

  exec { 'pyscaler: systemctl daemon-reload':
    command     => '/bin/systemctl daemon-reload',
    refreshonly => true,
  }

  file { "${unit_dir}/pyscaler.target":
    ensure => file,
    source => "${source}/pyscaler.target",
    mode   => '0644',
    notify => Exec['pyscaler: systemctl daemon-reload'],
  }

  $unit_files.each |$role, $unit| {
    if $role in $pyscaler::roles {
      file { "${unit_dir}/${unit}":
        ensure => file,
        source => "${source}/${unit}",
        mode   => '0644',
        notify => Exec['pyscaler: systemctl daemon-reload'],
      }
      [$services[$role]].flatten.each |$service| {
        service { $service:
          ensure    => running,
          enable    => true,
          require   => Exec['pyscaler: systemctl daemon-reload'],
          subscribe => File["${unit_dir}/${unit}"],
        }
      }
    } elsif $unit in $installed {
      # Only when installed earlier: a role taken away from this host.
      service { [$services[$role]].flatten:
        ensure => stopped,
        enable => false,
      }
      -> file { "${unit_dir}/${unit}":
        ensure => absent,
        notify => Exec['pyscaler: systemctl daemon-reload'],
      }
    }
  }

  # Collect instances above collect_processes (the number was lowered): stopped.
  $running_instances = $facts['pyscaler_collect_instances'].lest || { [] }
  if 'collect' in $pyscaler::roles {
    $running_instances.filter |$instance| { !($instance in $collect_instances) }.each |$instance| {
      service { $instance:
        ensure => stopped,
        enable => false,
      }
    }
  }

  service { 'pyscaler.target':
    ensure   => running,
    enable   => true,
    require  => [Exec['pyscaler: systemctl daemon-reload'],
                 Service[$pyscaler::roles.map |$role| { $services[$role] }.flatten]],
  }
}
