# @summary A PyScaler host: packages, the pyscaler system user, a virtualenv
#   with the pinned requirements, /etc/pyscaler/pyscaler.env from these
#   parameters, and the systemd units of deploy/systemd for the host's roles.
#
# The layout is fixed because the systemd units in deploy/systemd name it:
#   /opt/pyscaler/app     -> $source_dir (a symlink: switch releases by pointing
#                            it at a new unpacked release directory)
#   /opt/pyscaler/venv    the virtualenv
#   /opt/pyscaler/static  collectstatic's output, served by nginx
#   /etc/pyscaler/pyscaler.env, /var/lib/pyscaler (state, home of user pyscaler)
#
# Roles: 'collect' may be given to any number of hosts (they share the
# collect queue); 'beat' to EXACTLY ONE host of the installation; 'web' to
# hosts behind nginx or a load balancer.
#
# @param source_dir        an unpacked PyScaler release (or checkout) on this host
# @param secret_key        Django's SECRET_KEY (50+ characters)
# @param database_url      DATABASE_URL, e.g. postgres://pyscaler:pw@db:5432/pyscaler
# @param broker_url        CELERY_BROKER_URL, e.g. amqp://pyscaler:pw@rabbitmq:5672/pyscaler
# @param memcached_servers every memcached server, host:port, same order on every host
# @param allowed_hosts     ALLOWED_HOSTS
# @param csrf_trusted_origins  CSRF_TRUSTED_ORIGINS (default: https://<each allowed host>)
# @param roles             which services this host runs
# @param collect_processes collect workers of one process each on this host
#                          (pyscaler-worker-collect@1 .. @N; see README "Sizing a deployment")
# @param collect_signing_key  COLLECT_SIGNING_KEY (32+ characters): the same on the beat host
#                          and every collect host; required on hosts with either role
# @param control_concurrency, actions_concurrency  worker processes per queue
# @param extra_env         any other variable of deploy/pyscaler.env.example (wins over the defaults)
# @param manage_packages   install the Debian packages PyScaler needs
# @param node_packages     packages giving web hosts node and npm (NodeSource's nodejs
#                          includes npm and conflicts with Debian's: use ['nodejs'] there)
# @param manage_nginx      on 'web' hosts, install the nginx site from deploy/nginx
# @param server_name, tls_cert, tls_key  the nginx site's host name and certificate paths
# @param run_migrations    run `migrate` for each new release: on ONE web host only
# @param pip_options       extra pip options, e.g. '--index-url https://pypi.internal/simple'
class pyscaler (
  Pattern[/\A\/[^\s'"]*\z/] $source_dir,
  Variant[String[50], Sensitive[String[50]]] $secret_key,
  Variant[Pattern[/\A(postgres|postgresql|mysql|sqlite):\/\/\S*\z/], Sensitive[String[1]]] $database_url,
  Variant[Pattern[/\Aamqps?:\/\/\S*\z/], Sensitive[String[1]]] $broker_url,
  Array[Pattern[/\A[^\s,]+:[0-9]+\z/], 1] $memcached_servers,
  Array[Pattern[/\A[^\s,]+\z/], 1] $allowed_hosts,
  Optional[Array[Pattern[/\Ahttps?:\/\/[^\s,]+\z/]]] $csrf_trusted_origins = undef,
  Array[Enum['web', 'beat', 'collect', 'control', 'actions'], 1] $roles = ['web', 'collect', 'control', 'actions'],
  Integer[1, 256] $collect_processes = 2,
  Optional[Variant[String[32], Sensitive[String[32]]]] $collect_signing_key = undef,
  Integer[1, 256] $control_concurrency = 2,
  Integer[1, 256] $actions_concurrency = 2,
  Hash[Pattern[/\A[A-Z][A-Z0-9_]*\z/], Pattern[/\A[^\n]*\z/]] $extra_env = {},
  Boolean $manage_packages = true,
  Array[String[1]] $node_packages = ['nodejs', 'npm'],
  Boolean $manage_nginx = true,
  Pattern[/\A[^\s;{}]+( [^\s;{}]+)*\z/] $server_name = $facts['networking']['fqdn'],
  Pattern[/\A\/[^\s;{}]+\z/] $tls_cert = '/etc/ssl/certs/pyscaler.pem',
  Pattern[/\A\/[^\s;{}]+\z/] $tls_key = '/etc/ssl/private/pyscaler.key',
  Boolean $run_migrations = false,
  Pattern[/\A[^'"\n;&|]*\z/] $pip_options = '',
) {
  $base_dir   = '/opt/pyscaler'
  $app_dir    = "${base_dir}/app"
  $venv_dir   = "${base_dir}/venv"
  $static_dir = "${base_dir}/static"
  $config_dir = '/etc/pyscaler'
  $env_file   = "${config_dir}/pyscaler.env"
  $state_dir  = '/var/lib/pyscaler'
  $user       = 'pyscaler'
  $manage     = "${app_dir}/deploy/pyscaler-manage"

  if $collect_signing_key =~ Undef and ('beat' in $roles or 'collect' in $roles) {
    fail("pyscaler: collect_signing_key is required on hosts with the beat or collect role, the same value on all of them (roles: ${roles})")
  }
  if $run_migrations and !('web' in $roles) {
    fail("pyscaler: run_migrations needs the 'web' role on this host (roles: ${roles})")
  }

  contain pyscaler::install
  contain pyscaler::config
  contain pyscaler::release
  contain pyscaler::service

  Class['pyscaler::install'] -> Class['pyscaler::config'] -> Class['pyscaler::release'] -> Class['pyscaler::service']
  # New code, requirements or settings restart the services.
  Class['pyscaler::install'] ~> Class['pyscaler::service']
  Class['pyscaler::config'] ~> Class['pyscaler::service']

  if $manage_nginx and 'web' in $roles {
    contain pyscaler::nginx
    Class['pyscaler::install'] -> Class['pyscaler::nginx']
  }
}
