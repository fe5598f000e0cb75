# The PyScaler service units installed on this host, so that pyscaler::service
# can stop and remove the units of roles the host no longer has.
Facter.add(:pyscaler_installed_units) do
  setcode do
    Dir.glob('/etc/systemd/system/pyscaler-*.service').map { |path| File.basename(path) }.sort
  end
end
