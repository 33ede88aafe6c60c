package users

// Watchers returns how many users monitor productID: when the hub has
// fewer upstream streams than lots, the most watched lots get them first.
func (d *Directory) Watchers(productID int64) int {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if p := d.products[productID]; p != nil {
		return len(p.users)
	}
	return 0
}
