# @summary /etc/pyscaler/pyscaler.env from the class parameters: the same
#   variables as deploy/pyscaler.env.example, production switches on.
#
# Readable by root and the pyscaler group only, and never shown in diffs or
# reports: it holds the secret key and the database and broker passwords.
class pyscaler::config {
  $secret_key = $pyscaler::secret_key.unwrap
  $database_url = $pyscaler::database_url.unwrap
  $broker_url = $pyscaler::broker_url.unwrap
  # A web-only host signs nothing: without a key it gets a random one of its
  # own (persisted under the state directory by the settings).
  $signing_key = $pyscaler::collect_signing_key ? {
    Undef   => {},
    default => { 'COLLECT_SIGNING_KEY' => $pyscaler::collect_signing_key.unwrap },
  }
  $csrf_trusted_origins = $pyscaler::csrf_trusted_origins.lest || {
    $pyscaler::allowed_hosts.filter |$host| { $host !~ /\A(localhost|127\.0\.0\.1|\[::1\]|\*)\z/ }
      .map |$host| { "https://${host.regsubst(/\A\./, '')}" }
  }

  $defaults = {
    'SECRET_KEY'                   => $secret_key,
    'DEBUG'                        => 'false',
    'ALLOWED_HOSTS'                => $pyscaler::allowed_hosts.join(','),
    'CSRF_TRUSTED_ORIGINS'         => $csrf_trusted_origins.join(','),
    'PYSCALER_VAR_DIR'             => $pyscaler::state_dir,
    'STATIC_ROOT'                  => $pyscaler::static_dir,
    'BEHIND_TLS_PROXY'             => 'true',
    'SECURE_SSL_REDIRECT'          => 'true',
    'SECURE_COOKIES'               => 'true',
    'SECURE_HSTS_SECONDS'          => '31536000',
    'DATABASE_URL'                 => $database_url,
    'CELERY_BROKER_URL'            => $broker_url,
    'MEMCACHED_SERVERS'            => $pyscaler::memcached_servers.join(','),
    'PYSCALER_CONTROL_CONCURRENCY' => String($pyscaler::control_concurrency),
    'PYSCALER_ACTIONS_CONCURRENCY' => String($pyscaler::actions_concurrency),
    'SAMPLE_LOG_DIR'               => "${pyscaler::state_dir}/samples",
    'SSH_KNOWN_HOSTS'              => "${pyscaler::state_dir}/.ssh/known_hosts",
    'PUPPET_DIR'                   => "${pyscaler::app_dir}/puppet",
    'GUNICORN_BIND'                => '127.0.0.1:8000',
  }

  file { $pyscaler::config_dir:
    ensure => directory,
    owner  => 'root',
    group  => $pyscaler::user,
    mode   => '0750',
  }

  file { $pyscaler::env_file:
    ensure    => file,
    owner     => 'root',
    group     => $pyscaler::user,
    mode      => '0640',
    show_diff => false,
    content   => Sensitive(epp('pyscaler/pyscaler.env.epp', { 'env' => $defaults + $signing_key + $pyscaler::extra_env })),
  }
}
