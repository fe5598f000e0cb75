# @summary The systemd units of deploy/systemd for this host's roles: installed
#   from the release, enabled and running; the units of other roles stopped,
#   disabled and removed.
#
# A new release, new requirements or a changed env file restart the services
# (this class is notified by pyscaler::install and pyscaler::config).
class pyscaler::service {
  $units = {
    'web'     => 'pyscaler-web.service',
    'beat'    => 'pyscaler-beat.service',
    'collect' => 'pyscaler-worker-collect.service',
    'control' => 'pyscaler-worker-control.service',
    'actions' => 'pyscaler-worker-actions.service',
  }
  $unit_dir = '/etc/systemd/system'
  $source = "${pyscaler::source_dir}/deploy/systemd"

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

  $units.each |$role, $unit| {
    if $role in $pyscaler::roles {
      file { "${unit_dir}/${unit}":
        ensure => file,
        source => "${source}/${unit}",
        mode   => '0644',
        notify => Exec['pyscaler: systemctl daemon-reload'],
      }
      service { $unit:
        ensure    => running,
        enable    => true,
        require   => Exec['pyscaler: systemctl daemon-reload'],
        subscribe => File["${unit_dir}/${unit}"],
      }
    } else {
      # Only when installed earlier: a role taken away from this host.
      if $facts['pyscaler_installed_units'] and $unit in $facts['pyscaler_installed_units'] {
        service { $unit:
          ensure   => stopped,
          enable   => false,
        }
        -> file { "${unit_dir}/${unit}":
          ensure => absent,
          notify => Exec['pyscaler: systemctl daemon-reload'],
        }
      }
    }
  }

  service { 'pyscaler.target':
    ensure   => running,
    enable   => true,
    require  => [Exec['pyscaler: systemctl daemon-reload'], Service[$pyscaler::roles.map |$role| { $units[$role] }]],
  }
}
