# PyScaler's node role: what OSConfiguration applies to a new node by default.
#
# PyScaler passes the node's settings as facts (FACTER_pyscaler_* on the
# `puppet apply` command line), so this one manifest serves every cluster:
#   pyscaler_jmx_port        the JMX port of the cluster's JVM record (required)
#   pyscaler_jmx_host        the one address the JMX agent binds to (required;
#                            PyScaler sets the node's address)
#   pyscaler_jmx_tls         the JVM record's TLS flag: must be true, the role
#                            always serves JMX over TLS
#   pyscaler_jmx_secrets_dir where PyScaler copied the JMX password and access
#                            files for this run (required: the JVM record needs
#                            a username and a password reference). Secrets are
#                            never facts: facts show up in process lists and logs.
#   pyscaler_jvm_base_dir    where the JVM lives (default /opt/pyscaler-jvm)
#   pyscaler_jvm_user        the system user the JVM runs as (default pyscaler-jvm)
#   pyscaler_rmi_hostname    address JMX clients reconnect to (default: Java's choice)
#   pyscaler_jvm_heap        heap size such as 64m (default 64m)
#   pyscaler_service_netns   set by PyScaler when Puppet runs in a sealed namespace
#   pyscaler_cluster, pyscaler_node  names, for the record
$jmx_port = $facts['pyscaler_jmx_port'].lest || {
  fail('fact pyscaler_jmx_port is not set: OSConfiguration sets it from the cluster\'s JVM record')
}
$jmx_host = $facts['pyscaler_jmx_host'].lest || {
  fail('fact pyscaler_jmx_host is not set: the JMX agent listens on one address only (OSConfiguration sets the node\'s)')
}
$jmx_secrets_dir = $facts['pyscaler_jmx_secrets_dir'].lest || {
  fail('no JMX password for this run: the jvm_node role requires JMX authentication; give the cluster\'s JVM record a username and a password reference')
}
if $facts['pyscaler_jmx_tls'] != 'true' {
  fail('the jvm_node role serves JMX over TLS only: turn TLS on in the cluster\'s JVM record')
}

node default {
  class { 'jvm_node':
    base_dir        => $facts['pyscaler_jvm_base_dir'].lest || { '/opt/pyscaler-jvm' },
    jmx_port        => Integer($jmx_port),
    jmx_host        => $jmx_host,
    jmx_secrets_dir => $jmx_secrets_dir,
    jvm_user        => $facts['pyscaler_jvm_user'].lest || { 'pyscaler-jvm' },
    rmi_hostname    => $facts['pyscaler_rmi_hostname'],
    heap            => $facts['pyscaler_jvm_heap'].lest || { '64m' },
    netns           => $facts['pyscaler_service_netns'].lest || { '' },
  }
}
