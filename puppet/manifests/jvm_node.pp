# PyScaler's node role: what OSConfiguration applies to a new node by default.
#
# PyScaler passes the node's settings as facts (FACTER_pyscaler_* on the
# `puppet apply` command line), so this one manifest serves every cluster:
#   pyscaler_jmx_port       the JMX port of the cluster's JVM record (required)
#   pyscaler_jvm_base_dir   where the JVM lives (default /opt/pyscaler-jvm)
#   pyscaler_jmx_host       address the JMX agent binds to (default: all)
#   pyscaler_rmi_hostname   address JMX clients reconnect to (default: Java's choice)
#   pyscaler_jvm_heap       heap size such as 64m (default 64m)
#   pyscaler_service_netns  set by PyScaler when Puppet runs in a sealed namespace
#   pyscaler_cluster, pyscaler_node  names, for the record
$jmx_port = $facts['pyscaler_jmx_port'].lest || {
  fail('fact pyscaler_jmx_port is not set: OSConfiguration sets it from the cluster\'s JVM record')
}

node default {
  class { 'jvm_node':
    base_dir     => $facts['pyscaler_jvm_base_dir'].lest || { '/opt/pyscaler-jvm' },
    jmx_port     => Integer($jmx_port),
    jmx_host     => $facts['pyscaler_jmx_host'],
    rmi_hostname => $facts['pyscaler_rmi_hostname'],
    heap         => $facts['pyscaler_jvm_heap'].lest || { '64m' },
    netns        => $facts['pyscaler_service_netns'].lest || { '' },
  }
}
