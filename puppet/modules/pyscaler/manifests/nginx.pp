# @summary The nginx site of deploy/nginx/pyscaler.conf.template, rendered
#   with this host's names and paths: TLS in front of gunicorn, static files
#   from collectstatic's output.
#
# The template is read from the release at catalog compilation (`puppet
# apply` on the host itself), and its ${PYSCALER_*} placeholders filled the
# way deploy/render.py does.
class pyscaler::nginx {
  $values = {
    'PYSCALER_SERVER_NAME'  => $pyscaler::server_name,
    'PYSCALER_HTTP_LISTEN'  => '80',
    'PYSCALER_HTTPS_LISTEN' => '443',
    'PYSCALER_UPSTREAM'     => '127.0.0.1:8000',
    'PYSCALER_STATIC_ROOT'  => $pyscaler::static_dir,
    'PYSCALER_TLS_CERT'     => $pyscaler::tls_cert,
    'PYSCALER_TLS_KEY'      => $pyscaler::tls_key,
  }
  $template = file("${pyscaler::source_dir}/deploy/nginx/pyscaler.conf.template")
  $site = $values.reduce($template) |$text, $pair| {
    $text.regsubst("\\$\\{${pair[0]}\\}", $pair[1], 'G')
  }
  $left = $site.match(/\$\{PYSCALER_[A-Z0-9_]+\}/)
  if $left {
    fail("pyscaler::nginx: no value for ${left[0]} in deploy/nginx/pyscaler.conf.template")
  }

  file { '/etc/nginx/sites-available/pyscaler':
    ensure  => file,
    mode    => '0644',
    content => $site,
  }
  file { '/etc/nginx/sites-enabled/pyscaler':
    ensure => link,
    target => '/etc/nginx/sites-available/pyscaler',
  }
  # Debian's default site would answer for unknown host names on port 80.
  file { '/etc/nginx/sites-enabled/default':
    ensure => absent,
  }
  # A site nginx refuses never reaches the running nginx: the reload depends
  # on this check.
  exec { 'pyscaler: nginx -t':
    command     => '/usr/sbin/nginx -t -q',
    refreshonly => true,
    logoutput   => true,
    subscribe   => File['/etc/nginx/sites-available/pyscaler', '/etc/nginx/sites-enabled/pyscaler',
                        '/etc/nginx/sites-enabled/default'],
  }
  ~> service { 'nginx':
    ensure  => running,
    enable  => true,
    restart => '/bin/systemctl reload nginx',
  }
}
