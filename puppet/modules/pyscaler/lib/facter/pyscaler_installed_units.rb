# The PyScaler service units installed on this host, so that pyscaler::service
# can stop and remove the units of roles the host no longer has.
Facter.add(:pyscaler_installed_units) do
  setcode do
    Dir.glob('/etc/systemd/system/pyscaler-*.service').map { |path| File.basename(path) }.sort
  end
end

# The collect worker instances enabled on this host (pyscaler-worker-collect@N
# links under the target's .wants), so that lowering collect_processes stops
# the instances above the new number.
Facter.add(:pyscaler_collect_instances) do
  setcode do
    Dir.glob('/etc/systemd/system/*.wants/pyscaler-worker-collect@*.service')
       .map { |path| File.basename(path) }.uniq.sort
  end
end
