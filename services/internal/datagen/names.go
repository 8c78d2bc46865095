package datagen

import (
	"strings"
	"sync"
	"time"
)

// The name lists below were written for this project (they are not taken
// from any dataset). Each is roughly ordered from the most to the least
// common, because pick favours the front of a list.

var maleNames = []string{
	"Juan", "José", "Carlos", "Luis", "Jorge", "Miguel", "Daniel", "Mateo",
	"Santiago", "Nicolás", "Martín", "Sebastián", "Matías", "Lucas", "Alejandro",
	"Diego", "Pablo", "Joaquín", "Tomás", "Benjamín", "Agustín", "Facundo",
	"Franco", "Gonzalo", "Federico", "Ezequiel", "Maximiliano", "Emiliano",
	"Julián", "Valentín", "Thiago", "Bautista", "Felipe", "Lautaro", "Ignacio",
	"Rodrigo", "Leandro", "Marcelo", "Gustavo", "Ricardo", "Roberto", "Héctor",
	"Raúl", "Sergio", "Fernando", "Andrés", "Gabriel", "Ramón", "Rubén", "Hugo",
	"Óscar", "Alberto", "Eduardo", "Mario", "Ángel", "Germán", "Cristian",
	"Damián", "Hernán", "Adrián", "Iván", "Joel", "Elías", "Ulises", "Gastón",
	"Mauricio", "Ariel", "Walter", "Claudio", "Esteban", "Emanuel", "Francisco",
	"Manuel", "Antonio", "Pedro", "Simón", "Máximo", "Bruno", "Lisandro",
	"Ramiro", "Rafael", "Víctor", "Nahuel", "Benicio", "Ciro",
}

var femaleNames = []string{
	"María", "Ana", "Sofía", "Valentina", "Martina", "Lucía", "Camila", "Laura",
	"Silvia", "Patricia", "Claudia", "Graciela", "Susana", "Marta", "Norma",
	"Mónica", "Verónica", "Gabriela", "Carolina", "Natalia", "Paula",
	"Florencia", "Julieta", "Agustina", "Micaela", "Milagros", "Rocío", "Belén",
	"Luciana", "Daniela", "Romina", "Vanesa", "Andrea", "Lorena", "Mariana",
	"Cecilia", "Soledad", "Victoria", "Catalina", "Emilia", "Isabella", "Olivia",
	"Delfina", "Abril", "Guadalupe", "Candela", "Josefina", "Pilar", "Renata",
	"Antonella", "Brenda", "Celeste", "Noelia", "Jazmín", "Ximena", "Inés",
	"Elena", "Beatriz", "Rosa", "Teresa", "Alicia", "Liliana", "Mirta", "Estela",
	"Ángela", "Sabrina", "Tamara", "Melina", "Carla", "Juana", "Lourdes",
	"Ramona", "Raquel", "Eugenia", "Constanza", "Ailén", "Aldana", "Malena",
	"Mía", "Zoe",
}

var surnames = []string{
	"González", "Rodríguez", "Gómez", "Fernández", "López", "Díaz", "Martínez",
	"Pérez", "García", "Sánchez", "Romero", "Sosa", "Álvarez", "Torres", "Ruiz",
	"Ramírez", "Flores", "Benítez", "Acosta", "Medina", "Herrera", "Suárez",
	"Aguirre", "Giménez", "Gutiérrez", "Pereyra", "Rojas", "Molina", "Castro",
	"Ortiz", "Silva", "Núñez", "Luna", "Juárez", "Cabrera", "Ríos", "Ferreyra",
	"Godoy", "Morales", "Domínguez", "Moreno", "Peralta", "Vega", "Carrizo",
	"Quiroga", "Castillo", "Ledesma", "Muñoz", "Ojeda", "Ponce", "Vera",
	"Vázquez", "Villalba", "Cardozo", "Navarro", "Ramos", "Arias", "Coronel",
	"Córdoba", "Figueroa", "Correa", "Cáceres", "Vargas", "Maldonado",
	"Mansilla", "Farías", "Rivero", "Paz", "Miranda", "Roldán", "Méndez",
	"Lucero", "Cruz", "Hernández", "Agüero", "Páez", "Blanco", "Mendoza",
	"Barrios", "Escobar", "Ávila", "Soria", "Leiva", "Acuña", "Martín",
	"Maidana", "Moyano", "Campos", "Olivera", "Duarte", "Soto", "Bustos",
	"Chávez", "Bravo", "Villarreal", "Iglesias", "Valdez", "Bazán", "Zárate",
	"Pereira", "Santillán", "Toledo", "Ibáñez", "Sandoval", "Mamani", "Quispe",
	"Rossi", "Ferrari", "Russo", "Bianchi", "Romano", "Colombo", "Fontana",
	"Lombardi", "Costa", "Bruno", "Galván", "Montenegro", "Sepúlveda",
	"Echeverría", "Goñi", "Arregui", "Etcheverry", "Salazar", "Cisneros",
}

// Birthdates run over every day of [firstBirthYear, lastBirthYear].
const (
	firstBirthYear = 1940
	lastBirthYear  = 2005
	dateLen        = len("YYYY-MM-DD")
	day            = 24 * time.Hour
)

// genderNames locates the given names of one gender in tables.given: the
// single name i at [base+i*n+i], the two names "i j" at [base+i*n+j].
type genderNames struct {
	base, n int
}

// tables holds the precomputed, read-only strings the generator slices.
type tables struct {
	// given holds every given name, single or double, of both genders;
	// all entries slice one string.
	given  []string
	gender [2]genderNames // 0 male, 1 female
	// dates is every birthdate back to back, dateLen bytes each.
	dates string
	// docBase is the typical DNI of someone born on each day of dates.
	docBase []uint32
}

var loadTables = sync.OnceValue(buildTables)

func buildTables() *tables {
	t := &tables{}
	var sb strings.Builder
	var spans [][2]int
	for g, list := range [2][]string{maleNames, femaleNames} {
		t.gender[g] = genderNames{base: len(spans), n: len(list)}
		for i, a := range list {
			for j, b := range list {
				off := sb.Len()
				sb.WriteString(a)
				if i != j {
					sb.WriteByte(' ')
					sb.WriteString(b)
				}
				spans = append(spans, [2]int{off, sb.Len()})
			}
		}
	}
	all := sb.String()
	t.given = make([]string, len(spans))
	for k, s := range spans {
		t.given[k] = all[s[0]:s[1]]
	}

	start := time.Date(firstBirthYear, time.January, 1, 0, 0, 0, 0, time.UTC)
	end := time.Date(lastBirthYear+1, time.January, 1, 0, 0, 0, 0, time.UTC)
	days := int(end.Sub(start) / day)
	buf := make([]byte, 0, days*dateLen)
	t.docBase = make([]uint32, days)
	for d := range days {
		at := start.AddDate(0, 0, d)
		buf = at.AppendFormat(buf, time.DateOnly)
		t.docBase[d] = docForDay(at)
	}
	t.dates = string(buf)
	return t
}

// docAnchors approximates the Argentine DNI handed out to people born at the
// start of each decade (numbers grow with the birth year; older people carry
// lower, 7-digit numbers). Values in between are interpolated by day.
var docAnchors = []struct {
	year int
	doc  int64
}{
	{1930, 1_500_000},
	{1940, 4_000_000},
	{1950, 7_500_000},
	{1960, 13_500_000},
	{1970, 21_000_000},
	{1980, 28_000_000},
	{1990, 35_000_000},
	{2000, 42_500_000},
	{2010, 50_000_000},
}

// docForDay interpolates docAnchors with integer arithmetic only, so the
// result is the same on every platform.
func docForDay(at time.Time) uint32 {
	for k := 0; k+1 < len(docAnchors); k++ {
		a, b := docAnchors[k], docAnchors[k+1]
		if at.Year() >= b.year {
			continue
		}
		from := time.Date(a.year, time.January, 1, 0, 0, 0, 0, time.UTC)
		to := time.Date(b.year, time.January, 1, 0, 0, 0, 0, time.UTC)
		span := int64(to.Sub(from) / day)
		off := int64(at.Sub(from) / day)
		return uint32(a.doc + (b.doc-a.doc)*off/span)
	}
	return uint32(docAnchors[len(docAnchors)-1].doc)
}
