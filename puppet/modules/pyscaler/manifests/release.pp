# @summary Per-release management commands, run as the services run them
#   (deploy/pyscaler-manage: the env file and the virtualenv).
#
# Each runs once per release directory: it leaves a stamp naming the release
# and runs again only when $source_dir changes (or after it failed).
class pyscaler::release {
  $static_dir = $pyscaler::static_dir
  $state_dir  = $pyscaler::state_dir
  $user       = $pyscaler::user
  $release    = $pyscaler::source_dir

  if 'web' in $pyscaler::roles {
    # The console's browser libraries (STATICFILES_DIRS), as package-lock.json
    # pins them; skipped while node_modules matches the lock file.
    $lock = "${pyscaler::app_dir}/package-lock.json"
    $lock_stamp = "${pyscaler::app_dir}/node_modules/.pyscaler-package-lock.json"
    exec { 'pyscaler: npm ci':
      # cd in the command: a cwd that does not exist yet fails even a noop run.
      command   => "cd ${pyscaler::app_dir} && /usr/bin/npm ci --no-audit --no-fund && /bin/cp ${lock} ${lock_stamp}",
      unless    => "/usr/bin/cmp -s ${lock} ${lock_stamp}",
      provider  => shell,
      timeout   => 600,
      logoutput => on_failure,
      before    => Exec['pyscaler: collectstatic'],
    }
    exec { 'pyscaler: collectstatic':
      command   => "${pyscaler::manage} collectstatic --noinput -v 0 && echo '${release}' > ${static_dir}/.pyscaler-release",
      unless    => "/bin/grep -qxF '${release}' ${static_dir}/.pyscaler-release",
      provider  => shell,
      user      => $user,
      timeout   => 600,
      logoutput => on_failure,
      require   => [Exec['pyscaler: pip install requirements'], File[$static_dir]],
    }
  }
  if $pyscaler::run_migrations {
    exec { 'pyscaler: migrate':
      command   => "${pyscaler::manage} migrate --noinput && echo '${release}' > ${state_dir}/.pyscaler-migrated",
      unless    => "/bin/grep -qxF '${release}' ${state_dir}/.pyscaler-migrated",
      provider  => shell,
      user      => $user,
      timeout   => 1800,
      logoutput => on_failure,
      require   => [Exec['pyscaler: pip install requirements'], File[$state_dir]],
    }
  }
}
